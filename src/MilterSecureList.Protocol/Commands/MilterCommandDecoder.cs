using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Commands;

/// <summary>
/// Payload → typed command. Strings are NUL-terminated bytes with no declared charset; we decode them
/// as UTF-8 (SMTPUTF8) and keep the raw bytes where they matter (header values).
/// Violations throw <see cref="MilterProtocolException"/> with <see cref="MilterViolation.MalformedPayload"/>
/// or <see cref="MilterViolation.UnknownCommand"/>.
/// </summary>
public static class MilterCommandDecoder
{
    private static readonly DataCommand s_data = new();
    private static readonly EndOfHeadersCommand s_eoh = new();
    private static readonly AbortCommand s_abort = new();
    private static readonly QuitCommand s_quit = new();
    private static readonly QuitNewConnectionCommand s_quitNc = new();

    public static MilterCommand Decode(in MilterFrame frame)
    {
        ReadOnlySequence<byte> p = frame.Payload;
        return frame.Command switch
        {
            MilterCommandCode.OptionNegotiation => DecodeOptionNegotiation(p),
            MilterCommandCode.Macro => DecodeMacro(p),
            MilterCommandCode.Connect => DecodeConnect(p),
            MilterCommandCode.Helo => new HeloCommand(ReadSingleString(p, "HELO")),
            MilterCommandCode.Mail => DecodeMail(p),
            MilterCommandCode.Recipient => DecodeRecipient(p),
            MilterCommandCode.Data => s_data,
            MilterCommandCode.Header => DecodeHeader(p),
            MilterCommandCode.EndOfHeaders => s_eoh,
            MilterCommandCode.Body => new BodyCommand(p),
            MilterCommandCode.EndOfMessage => new EndOfMessageCommand(p),
            MilterCommandCode.Abort => s_abort,
            MilterCommandCode.Quit => s_quit,
            MilterCommandCode.QuitNewConnection => s_quitNc,
            MilterCommandCode.Unknown => new UnknownCommand(ReadSingleString(p, "UNKNOWN")),
            _ => ThrowUnknown(frame.Code),
        };
    }

    /// <summary>u32 version, u32 actions, u32 protocol; a longer payload is tolerated (docs/protocol.md §3).</summary>
    public static OptionNegotiationCommand DecodeOptionNegotiation(ReadOnlySequence<byte> payload)
    {
        if (payload.Length < 12)
        {
            Malformed($"OPTNEG payload has {payload.Length} bytes, needs 12");
        }

        Span<byte> b = stackalloc byte[12];
        payload.Slice(0, 12).CopyTo(b);
        return new OptionNegotiationCommand(
            BinaryPrimitives.ReadUInt32BigEndian(b),
            (MilterActions)BinaryPrimitives.ReadUInt32BigEndian(b[4..]),
            (MilterProtocolOptions)BinaryPrimitives.ReadUInt32BigEndian(b[8..]));
    }

    /// <summary>
    /// u8 command code, then name\0 value\0 pairs. Parsed loosely on purpose: Postfix sends packets with
    /// no pairs, and an odd trailing name (or an unterminated tail) is ignored (docs/protocol.md §6).
    /// </summary>
    public static MacroCommand DecodeMacro(ReadOnlySequence<byte> payload)
    {
        if (payload.Length < 1)
        {
            Malformed("MACRO payload is empty (needs the command code)");
        }

        var reader = new SequenceReader<byte>(payload);
        reader.TryRead(out byte code);
        var pairs = new List<KeyValuePair<string, string>>();
        while (TryReadCString(ref reader, out string? name) && TryReadCString(ref reader, out string? value))
        {
            pairs.Add(new KeyValuePair<string, string>(name, value));
        }

        return new MacroCommand((MilterCommandCode)code, pairs);
    }

    /// <summary>hostname\0, u8 family, then (unless family 'U') u16 port and address\0.</summary>
    public static ConnectCommand DecodeConnect(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        if (!TryReadCString(ref reader, out string? host))
        {
            Malformed("CONNECT hostname is not NUL-terminated");
        }

        if (!reader.TryRead(out byte family))
        {
            Malformed("CONNECT has no address family");
        }

        if (family == (byte)ConnectFamily.Unknown)
        {
            return new ConnectCommand(host, ConnectFamily.Unknown, 0, string.Empty);
        }

        if (!reader.TryReadBigEndian(out short port))
        {
            Malformed("CONNECT has no port");
        }

        if (!TryReadCString(ref reader, out string? address))
        {
            Malformed("CONNECT address is not NUL-terminated");
        }

        return new ConnectCommand(host, (ConnectFamily)family, unchecked((ushort)port), address);
    }

    public static MailCommand DecodeMail(ReadOnlySequence<byte> payload)
    {
        List<string> args = ReadStringList(payload, "MAIL");
        string sender = args[0];
        args.RemoveAt(0);
        return new MailCommand(sender, args);
    }

    public static RecipientCommand DecodeRecipient(ReadOnlySequence<byte> payload)
    {
        List<string> args = ReadStringList(payload, "RCPT");
        string rcpt = args[0];
        args.RemoveAt(0);
        return new RecipientCommand(rcpt, args);
    }

    /// <summary>name\0 value\0.</summary>
    public static HeaderCommand DecodeHeader(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        if (!TryReadCString(ref reader, out string? name))
        {
            Malformed("HEADER name is not NUL-terminated");
        }

        if (!reader.TryReadTo(out ReadOnlySequence<byte> raw, 0))
        {
            Malformed("HEADER value is not NUL-terminated");
        }

        return new HeaderCommand(name, raw.ToArray());
    }

    private static string ReadSingleString(ReadOnlySequence<byte> payload, string what)
    {
        var reader = new SequenceReader<byte>(payload);
        if (!TryReadCString(ref reader, out string? s))
        {
            Malformed($"{what} argument is not NUL-terminated");
        }

        return s;
    }

    private static List<string> ReadStringList(ReadOnlySequence<byte> payload, string what)
    {
        var reader = new SequenceReader<byte>(payload);
        var list = new List<string>(2);
        while (!reader.End)
        {
            if (!TryReadCString(ref reader, out string? s))
            {
                Malformed($"{what} argument {list.Count} is not NUL-terminated");
            }

            list.Add(s);
        }

        if (list.Count == 0)
        {
            Malformed($"{what} has no address");
        }

        return list;
    }

    private static bool TryReadCString(ref SequenceReader<byte> reader, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        if (!reader.TryReadTo(out ReadOnlySequence<byte> bytes, 0))
        {
            value = null;
            return false;
        }

        value = bytes.IsEmpty ? string.Empty : Encoding.UTF8.GetString(bytes);
        return true;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Malformed(string message) => MilterProtocolException.Throw(MilterViolation.MalformedPayload, message);

    private static MilterCommand ThrowUnknown(byte code)
    {
        MilterProtocolException.Throw(MilterViolation.UnknownCommand, $"unknown command code 0x{code:X2}");
        return null!;
    }
}
