using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Testing;

/// <summary>One reply frame from the milter.</summary>
public sealed record MilterReply(byte Code, byte[] Payload)
{
    public MilterResponseCode Response => (MilterResponseCode)Code;

    /// <summary>The payload split at NULs (for string replies).</summary>
    public string[] Strings => Encoding.UTF8.GetString(Payload).TrimEnd('\0').Split('\0');

    public override string ToString() => $"{(char)Code}[{Payload.Length}]";
}

/// <summary>What the milter answered at end-of-message.</summary>
public sealed class EndOfMessageResult
{
    public List<MilterReply> Modifications { get; } = [];

    public MilterReply Final { get; set; } = null!;

    public int ProgressCount { get; set; }

    public List<string> AddedRecipients => Modifications.Where(m => m.Response is MilterResponseCode.AddRecipient or MilterResponseCode.AddRecipientWithArgs).Select(m => m.Strings[0]).ToList();

    public List<string> DeletedRecipients => Modifications.Where(m => m.Response == MilterResponseCode.DeleteRecipient).Select(m => m.Strings[0]).ToList();

    public List<MilterReply> BodyChunks => Modifications.Where(m => m.Response == MilterResponseCode.ReplaceBody).ToList();

    public byte[]? ReplacedBody => BodyChunks.Count == 0 ? null : BodyChunks.SelectMany(c => c.Payload).ToArray();
}

/// <summary>
/// A small MTA-side milter client for tests and the benchmark. It speaks like Postfix:
/// each command with its macro packet in one write, commands negotiated as no-reply are pipelined, and it
/// checks that the milter replies exactly when a reply is due.
/// </summary>
public sealed class TestMta : IAsyncDisposable
{
    private readonly Stream _read;
    private readonly Stream _write;
    private readonly IDisposable? _owner;
    private readonly ArrayBufferWriter<byte> _out = new(64 * 1024);
    private readonly byte[] _header = new byte[4];

    public TestMta(Stream read, Stream write, IDisposable? owner = null)
    {
        _read = read;
        _write = write;
        _owner = owner;
    }

    public uint Version { get; private set; }

    public MilterActions Actions { get; private set; }

    public MilterProtocolOptions Protocol { get; private set; }

    /// <summary>The raw OPTNEG reply payload after the three u32 (macro lists).</summary>
    public byte[] NegotiationTrailer { get; private set; } = [];

    public static TestMta Over(IDuplexPipe pipe) => new(pipe.Input.AsStream(), pipe.Output.AsStream());

    public static async Task<TestMta> ConnectAsync(string socketSpec, CancellationToken cancellationToken = default)
    {
        Socket socket;
        EndPoint endPoint;
        if (socketSpec.StartsWith("unix:", StringComparison.Ordinal))
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            endPoint = new UnixDomainSocketEndPoint(socketSpec[5..]);
        }
        else if (socketSpec.StartsWith("inet:", StringComparison.Ordinal))
        {
            string hp = socketSpec[5..];
            int colon = hp.LastIndexOf(':');
            socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            endPoint = new IPEndPoint(IPAddress.Parse(hp[..colon]), int.Parse(hp[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        }
        else
        {
            throw new ArgumentException($"socket spec must be inet:HOST:PORT or unix:/path, got {socketSpec}", nameof(socketSpec));
        }

        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var stream = new NetworkStream(socket, ownsSocket: true);
        return new TestMta(stream, stream, stream);
    }

    public bool ExpectsReply(MilterCommandCode code) => code switch
    {
        MilterCommandCode.Connect => !Has(MilterProtocolOptions.NoReplyConnect),
        MilterCommandCode.Helo => !Has(MilterProtocolOptions.NoReplyHelo),
        MilterCommandCode.Mail => !Has(MilterProtocolOptions.NoReplyMail),
        MilterCommandCode.Recipient => !Has(MilterProtocolOptions.NoReplyRecipient),
        MilterCommandCode.Data => !Has(MilterProtocolOptions.NoReplyData),
        MilterCommandCode.Header => !Has(MilterProtocolOptions.NoReplyHeader),
        MilterCommandCode.EndOfHeaders => !Has(MilterProtocolOptions.NoReplyEndOfHeaders),
        MilterCommandCode.Body => !Has(MilterProtocolOptions.NoReplyBody),
        MilterCommandCode.Unknown => !Has(MilterProtocolOptions.NoReplyUnknown),
        MilterCommandCode.EndOfMessage => true,
        _ => false,
    };

    public bool Skips(MilterCommandCode code) => code switch
    {
        MilterCommandCode.Connect => Has(MilterProtocolOptions.NoConnect),
        MilterCommandCode.Helo => Has(MilterProtocolOptions.NoHelo),
        MilterCommandCode.Mail => Has(MilterProtocolOptions.NoMail),
        MilterCommandCode.Recipient => Has(MilterProtocolOptions.NoRecipient),
        MilterCommandCode.Data => Has(MilterProtocolOptions.NoData),
        MilterCommandCode.Header => Has(MilterProtocolOptions.NoHeaders),
        MilterCommandCode.EndOfHeaders => Has(MilterProtocolOptions.NoEndOfHeaders),
        MilterCommandCode.Body => Has(MilterProtocolOptions.NoBody),
        MilterCommandCode.Unknown => Has(MilterProtocolOptions.NoUnknown),
        _ => false,
    };

    /// <summary>OPTNEG as Postfix 3.7 sends it by default: v6, all actions, all protocol bits.</summary>
    public async Task NegotiateAsync(uint version = 6, MilterActions actions = MilterActions.All, MilterProtocolOptions protocol = (MilterProtocolOptions)0x1FFFFF)
    {
        var payload = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(payload, version);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4), (uint)actions);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8), (uint)protocol);
        Append((byte)MilterCommandCode.OptionNegotiation, payload);
        MilterReply reply = await ReadReplyAsync().ConfigureAwait(false);
        if (reply.Response != MilterResponseCode.OptionNegotiation || reply.Payload.Length < 12)
        {
            throw new InvalidDataException($"expected an OPTNEG reply, got {reply}");
        }

        Version = BinaryPrimitives.ReadUInt32BigEndian(reply.Payload);
        Actions = (MilterActions)BinaryPrimitives.ReadUInt32BigEndian(reply.Payload.AsSpan(4));
        Protocol = (MilterProtocolOptions)BinaryPrimitives.ReadUInt32BigEndian(reply.Payload.AsSpan(8));
        NegotiationTrailer = reply.Payload[12..];
    }

    /// <summary>Queues a MACRO packet; it goes out with the next command.</summary>
    public void Macro(MilterCommandCode forCommand, params string[] nameValuePairs)
    {
        var bytes = new List<byte> { (byte)forCommand };
        foreach (string s in nameValuePairs)
        {
            bytes.AddRange(Encoding.UTF8.GetBytes(s));
            bytes.Add(0);
        }

        Append((byte)MilterCommandCode.Macro, bytes.ToArray());
    }

    public Task<MilterReply?> ConnectAsync(string host, string address, ushort port = 25)
    {
        var bytes = new List<byte>();
        bytes.AddRange(CString(host));
        bytes.Add((byte)'4');
        bytes.Add((byte)(port >> 8));
        bytes.Add((byte)port);
        bytes.AddRange(CString(address));
        return CommandAsync(MilterCommandCode.Connect, bytes.ToArray());
    }

    public Task<MilterReply?> HeloAsync(string helo) => CommandAsync(MilterCommandCode.Helo, CString(helo));

    public Task<MilterReply?> MailAsync(string sender, params string[] args) => CommandAsync(MilterCommandCode.Mail, Strings([sender, .. args]));

    public Task<MilterReply?> RcptAsync(string recipient, params string[] args) => CommandAsync(MilterCommandCode.Recipient, Strings([recipient, .. args]));

    public Task<MilterReply?> DataAsync() => CommandAsync(MilterCommandCode.Data, ReadOnlyMemory<byte>.Empty);

    public Task<MilterReply?> HeaderAsync(string name, string value) => CommandAsync(MilterCommandCode.Header, Strings([name, value]));

    public Task<MilterReply?> EndOfHeadersAsync() => CommandAsync(MilterCommandCode.EndOfHeaders, ReadOnlyMemory<byte>.Empty);

    public Task<MilterReply?> UnknownAsync(string line) => CommandAsync(MilterCommandCode.Unknown, CString(line));

    /// <summary>Sends the body in BODY chunks of at most 65535 bytes, as Postfix does. Returns the last reply, if any.</summary>
    public async Task<MilterReply?> BodyAsync(ReadOnlyMemory<byte> body)
    {
        MilterReply? last = null;
        while (!body.IsEmpty)
        {
            int n = Math.Min(body.Length, MilterLimits.ChunkSize);
            last = await CommandAsync(MilterCommandCode.Body, body[..n]).ConfigureAwait(false);
            if (last is not null && last.Response != MilterResponseCode.Continue)
            {
                return last;
            }

            body = body[n..];
        }

        return last;
    }

    /// <summary>Sends EOM and reads edits and PROGRESS until the final reply.</summary>
    public async Task<EndOfMessageResult> EndOfMessageAsync(ReadOnlyMemory<byte> data = default)
    {
        Append((byte)MilterCommandCode.EndOfMessage, data.Span);
        var result = new EndOfMessageResult();
        while (true)
        {
            MilterReply reply = await ReadReplyAsync().ConfigureAwait(false);
            switch (reply.Response)
            {
                case MilterResponseCode.Progress:
                    result.ProgressCount++;
                    break;
                case MilterResponseCode.Continue or MilterResponseCode.Accept or MilterResponseCode.Reject or MilterResponseCode.Tempfail
                    or MilterResponseCode.Discard or MilterResponseCode.ReplyCode or MilterResponseCode.Shutdown:
                    result.Final = reply;
                    return result;
                default:
                    result.Modifications.Add(reply);
                    break;
            }
        }
    }

    public Task AbortAsync() => SendNoReplyAsync(MilterCommandCode.Abort);

    public Task QuitAsync() => SendNoReplyAsync(MilterCommandCode.Quit);

    public Task QuitNewConnectionAsync() => SendNoReplyAsync(MilterCommandCode.QuitNewConnection);

    /// <summary>Sends a raw frame (code + payload) and flushes; no reply is read.</summary>
    public async Task SendRawFrameAsync(byte code, ReadOnlyMemory<byte> payload)
    {
        Append(code, payload.Span);
        await FlushRefusedInputAsync().ConfigureAwait(false);
    }

    /// <summary>Writes arbitrary bytes (for malformed-input tests) and flushes.</summary>
    public async Task SendBytesAsync(ReadOnlyMemory<byte> bytes)
    {
        _out.Write(bytes.Span);
        await FlushRefusedInputAsync().ConfigureAwait(false);
    }

    // A milter that refuses what it just read completes its input with the violation, and on an in-process pipe that
    // can happen before our own flush returns, which then throws it. The test asserts on the end reason instead.
    private async Task FlushRefusedInputAsync()
    {
        try
        {
            await FlushAsync().ConfigureAwait(false);
        }
        catch (MilterSecureList.Protocol.Wire.MilterProtocolException)
        {
            _out.ResetWrittenCount();
        }
    }

    public async Task FlushAsync()
    {
        if (_out.WrittenCount > 0)
        {
            await _write.WriteAsync(_out.WrittenMemory).ConfigureAwait(false);
            await _write.FlushAsync().ConfigureAwait(false);
            _out.ResetWrittenCount();
        }
    }

    /// <summary>Flushes and waits for the milter to close; true on EOF, false if it sent anything instead.</summary>
    public async Task<bool> WaitForCloseAsync()
    {
        await FlushAsync().ConfigureAwait(false);
        try
        {
            var one = new byte[1];
            return await _read.ReadAsync(one).ConfigureAwait(false) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    public async Task<MilterReply> ReadReplyAsync()
    {
        await FlushAsync().ConfigureAwait(false);
        await _read.ReadExactlyAsync(_header).ConfigureAwait(false);
        uint length = BinaryPrimitives.ReadUInt32BigEndian(_header);
        if (length == 0 || length > 16 * 1024 * 1024)
        {
            throw new InvalidDataException($"bad reply length {length}");
        }

        var frame = new byte[length];
        await _read.ReadExactlyAsync(frame).ConfigureAwait(false);
        return new MilterReply(frame[0], frame[1..]);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _write.DisposeAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
        }

        if (!ReferenceEquals(_read, _write))
        {
            await _read.DisposeAsync().ConfigureAwait(false);
        }

        _owner?.Dispose();
    }

    /// <summary>Sends a command; reads and returns the reply if one is due under the negotiation, else null.</summary>
    public async Task<MilterReply?> CommandAsync(MilterCommandCode code, ReadOnlyMemory<byte> payload)
    {
        Append((byte)code, payload.Span);
        if (!ExpectsReply(code))
        {
            return null;
        }

        return await ReadReplyAsync().ConfigureAwait(false);
    }

    private async Task SendNoReplyAsync(MilterCommandCode code)
    {
        Append((byte)code, []);
        await FlushAsync().ConfigureAwait(false);
    }

    private void Append(byte code, ReadOnlySpan<byte> payload)
    {
        Span<byte> h = _out.GetSpan(5);
        BinaryPrimitives.WriteUInt32BigEndian(h, (uint)payload.Length + 1);
        h[4] = code;
        _out.Advance(5);
        _out.Write(payload);
    }

    private bool Has(MilterProtocolOptions o) => (Protocol & o) != 0;

    public static byte[] CString(string s) => [.. Encoding.UTF8.GetBytes(s), 0];

    public static byte[] Strings(IEnumerable<string> strings) => strings.SelectMany(CString).ToArray();
}
