using System.Text;

namespace MilterSecureList.Mime;

/// <summary>A message split into its header block and a stream over the body that follows the empty line.</summary>
public sealed class RawMessage : IDisposable
{
    internal RawMessage(MessageHeader header, Stream body)
    {
        Header = header;
        Body = body;
    }

    public MessageHeader Header { get; }

    /// <summary>The body bytes exactly as in the input, read once, front to back.</summary>
    public Stream Body { get; }

    public void Dispose() => Body.Dispose();
}

/// <summary>
/// Reads an RFC 5322 message (CRLF or bare LF line ends) into header fields and a body stream. Only the
/// header block is buffered, up to a limit; the body is streamed.
/// </summary>
public static class MessageReader
{
    /// <summary>Default limit of the header block: generous next to Postfix's 60000 bytes per field, small for memory.</summary>
    public const int DefaultMaxHeaderBytes = 1024 * 1024;

    private const int ReadSize = 16 * 1024;

    /// <summary>Reads the header block. <paramref name="input"/> is owned by the returned message's body stream.</summary>
    public static RawMessage Read(Stream input, int maxHeaderBytes = DefaultMaxHeaderBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxHeaderBytes);
        byte[] buffer = new byte[Math.Min(ReadSize, maxHeaderBytes + 2)];
        int count = 0;
        int scanFrom = 0;
        int headerEnd;      // offset just after the empty line, or count at EOF
        while (true)
        {
            headerEnd = FindHeaderEnd(buffer.AsSpan(0, count), scanFrom);
            if (headerEnd >= 0)
            {
                break;
            }

            scanFrom = Math.Max(0, count - 2);
            if (count > maxHeaderBytes)
            {
                throw TooLarge(maxHeaderBytes);
            }

            if (count == buffer.Length)
            {
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, maxHeaderBytes + ReadSize));
            }

            int read = input.Read(buffer, count, buffer.Length - count);
            if (read == 0)
            {
                headerEnd = count; // no empty line: the whole message is header (RFC 5322 §3.5 allows no body)
                break;
            }

            count += read;
        }

        if (headerEnd > maxHeaderBytes + 2)
        {
            throw TooLarge(maxHeaderBytes);
        }

        byte[] headerBytes = buffer.AsSpan(0, headerEnd).ToArray();
        MessageHeader header = ParseHeaderBlock(headerBytes);
        var body = new PrefixedReadStream(buffer.AsMemory(headerEnd, count - headerEnd), input);
        return new RawMessage(header, body);
    }

    /// <summary>Parses a complete header block (fields plus the optional terminating empty line).</summary>
    public static MessageHeader ParseHeaderBlock(ReadOnlyMemory<byte> block)
    {
        var fields = new List<RawHeaderField>();
        ReadOnlySpan<byte> span = block.Span;
        int pos = 0;
        int lineNumber = 0;
        while (pos < span.Length)
        {
            int fieldStart = pos;
            lineNumber++;
            int lineEnd = NextLine(span, pos);
            if (IsEmptyLine(span[pos..lineEnd]))
            {
                break; // end of header block
            }

            if (span[pos] is (byte)' ' or (byte)'\t')
            {
                throw MimeFormatException.Create(
                    MimeErrorReason.MalformedHeader, $"header line {lineNumber} is a continuation line with no field before it");
            }

            int colon = span[pos..lineEnd].IndexOf((byte)':');
            ReadOnlySpan<byte> name = colon < 0 ? default : span.Slice(pos, colon).TrimEnd(" \t"u8);
            if (colon < 0 || name.IsEmpty || name.IndexOfAnyExceptInRange((byte)33, (byte)126) >= 0)
            {
                string text = Encoding.Latin1.GetString(span[pos..lineEnd]).TrimEnd('\r', '\n');
                throw MimeFormatException.Create(
                    MimeErrorReason.MalformedHeader,
                    $"header line {lineNumber} is not a 'Name: value' field: '{ContentType.Abbreviate(text)}'");
            }

            int valueStart = colon + 1;
            pos = lineEnd;
            // Continuation lines (RFC 5322 §2.2.3) start with white space.
            while (pos < span.Length && span[pos] is (byte)' ' or (byte)'\t')
            {
                lineNumber++;
                pos = NextLine(span, pos);
            }

            fields.Add(new RawHeaderField(Encoding.ASCII.GetString(name), block[fieldStart..pos], valueStart));
        }

        return new MessageHeader(fields, block.Length);
    }

    private static int NextLine(ReadOnlySpan<byte> span, int pos)
    {
        int lf = span[pos..].IndexOf((byte)'\n');
        return lf < 0 ? span.Length : pos + lf + 1;
    }

    private static bool IsEmptyLine(ReadOnlySpan<byte> line) => line.SequenceEqual("\n"u8) || line.SequenceEqual("\r\n"u8);

    // Returns the offset after the empty line ending the header block, or -1 if not in the data yet.
    private static int FindHeaderEnd(ReadOnlySpan<byte> data, int scanFrom)
    {
        // An empty first line means an empty header block.
        if (scanFrom == 0)
        {
            if (data.StartsWith("\n"u8))
            {
                return 1;
            }

            if (data.StartsWith("\r\n"u8))
            {
                return 2;
            }
        }

        int i = scanFrom;
        while (true)
        {
            int lf = data[i..].IndexOf((byte)'\n');
            if (lf < 0)
            {
                return -1;
            }

            int next = i + lf + 1; // start of the following line
            if (next < data.Length && data[next] == (byte)'\n')
            {
                return next + 1;
            }

            if (next + 1 < data.Length && data[next] == (byte)'\r' && data[next + 1] == (byte)'\n')
            {
                return next + 2;
            }

            if (next + 1 >= data.Length)
            {
                return -1; // the next line is not complete enough to decide
            }

            i = next;
        }
    }

    private static MimeFormatException TooLarge(int max) =>
        MimeFormatException.Create(MimeErrorReason.HeaderTooLarge, $"header block is larger than {max} bytes");
}

/// <summary>Writes messages with CRLF line ends (RFC 5322 §2.1), keeping header fields byte for byte otherwise.</summary>
public static class MessageWriter
{
    /// <summary>Writes every field untouched except that a bare LF becomes CRLF, then the empty line.</summary>
    public static void WriteHeader(MessageHeader header, Stream output) => WriteHeader(header, [], output);

    /// <summary>Writes <paramref name="fields"/> untouched (bare LF becomes CRLF), then <paramref name="added"/>
    /// (values folded with LF, as milter header edits are), then the empty line.</summary>
    public static void WriteHeader(IEnumerable<RawHeaderField> fields, IEnumerable<MimeHeader> added, Stream output)
    {
        foreach (RawHeaderField field in fields)
        {
            WriteWithCrlf(field.RawBytes.Span, output);
            ReadOnlySpan<byte> raw = field.RawBytes.Span;
            if (raw.IsEmpty || raw[^1] != (byte)'\n')
            {
                output.Write("\r\n"u8); // last field of a header-only message without a final line end
            }
        }

        foreach (MimeHeader header in added)
        {
            WriteWithCrlf(System.Text.Encoding.UTF8.GetBytes(header.Name + ": " + header.Value + "\n"), output);
        }

        output.Write("\r\n"u8);
    }

    private static void WriteWithCrlf(ReadOnlySpan<byte> raw, Stream output)
    {
        while (!raw.IsEmpty)
        {
            int lf = raw.IndexOf((byte)'\n');
            if (lf < 0)
            {
                output.Write(raw);
                return;
            }

            if (lf > 0 && raw[lf - 1] == (byte)'\r')
            {
                output.Write(raw[..(lf + 1)]);
            }
            else
            {
                output.Write(raw[..lf]);
                output.Write("\r\n"u8);
            }

            raw = raw[(lf + 1)..];
        }
    }
}

/// <summary>A read-only stream over bytes already read past the header block, then the rest of the input.</summary>
internal sealed class PrefixedReadStream : Stream
{
    private readonly Stream _inner;
    private ReadOnlyMemory<byte> _prefix;

    public PrefixedReadStream(ReadOnlyMemory<byte> prefix, Stream inner)
    {
        _prefix = prefix;
        _inner = inner;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!_prefix.IsEmpty)
        {
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        return _inner.Read(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_prefix.IsEmpty)
        {
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        return await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
