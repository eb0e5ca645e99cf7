using System.Buffers;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Commands;

/// <summary>A decoded MTA command. Layouts: docs/protocol.md §3.</summary>
public abstract record MilterCommand(MilterCommandCode Code);

/// <summary>'O' SMFIC_OPTNEG: u32 version, u32 actions, u32 protocol.</summary>
public sealed record OptionNegotiationCommand(uint Version, MilterActions Actions, MilterProtocolOptions Protocol)
    : MilterCommand(MilterCommandCode.OptionNegotiation);

/// <summary>'D' SMFIC_MACRO: the code of the command the macros belong to, then name/value pairs.</summary>
public sealed record MacroCommand(MilterCommandCode ForCommand, IReadOnlyList<KeyValuePair<string, string>> Macros)
    : MilterCommand(MilterCommandCode.Macro);

/// <summary>Address family byte of CONNECT (SMFIA_*).</summary>
public enum ConnectFamily : byte
{
    Unknown = (byte)'U', // SMFIA_UNKNOWN
    Unix = (byte)'L',    // SMFIA_UNIX
    Inet = (byte)'4',    // SMFIA_INET
    Inet6 = (byte)'6',   // SMFIA_INET6
}

/// <summary>'C' SMFIC_CONNECT: hostname\0, family, then u16 port and address\0 unless family is 'U'.</summary>
public sealed record ConnectCommand(string HostName, ConnectFamily Family, ushort Port, string Address)
    : MilterCommand(MilterCommandCode.Connect);

/// <summary>'H' SMFIC_HELO: helo-name\0.</summary>
public sealed record HeloCommand(string HeloName) : MilterCommand(MilterCommandCode.Helo);

/// <summary>'M' SMFIC_MAIL: &lt;sender&gt;\0 then one ESMTP parameter\0 each.</summary>
public sealed record MailCommand(string Sender, IReadOnlyList<string> EsmtpArgs) : MilterCommand(MilterCommandCode.Mail);

/// <summary>'R' SMFIC_RCPT: &lt;rcpt&gt;\0 then one ESMTP parameter\0 each.</summary>
public sealed record RecipientCommand(string Recipient, IReadOnlyList<string> EsmtpArgs) : MilterCommand(MilterCommandCode.Recipient);

/// <summary>'T' SMFIC_DATA: empty.</summary>
public sealed record DataCommand() : MilterCommand(MilterCommandCode.Data);

/// <summary>
/// 'L' SMFIC_HEADER: name\0 value\0. The value is kept as its raw bytes (8-bit headers exist) and decoded as
/// UTF-8 only when asked for, so a header is held once.
/// </summary>
public sealed record HeaderCommand(string Name, byte[] RawValue) : MilterCommand(MilterCommandCode.Header)
{
    /// <summary>The value decoded as UTF-8 (a new string on each call).</summary>
    public string Value => System.Text.Encoding.UTF8.GetString(RawValue);
}

/// <summary>'N' SMFIC_EOH: empty.</summary>
public sealed record EndOfHeadersCommand() : MilterCommand(MilterCommandCode.EndOfHeaders);

/// <summary>'B' SMFIC_BODY: a raw chunk. <see cref="Chunk"/> borrows the frame's memory.</summary>
public sealed record BodyCommand(ReadOnlySequence<byte> Chunk) : MilterCommand(MilterCommandCode.Body);

/// <summary>'E' SMFIC_BODYEOB: empty from Postfix; other MTAs may carry the last body chunk here (borrowed).</summary>
public sealed record EndOfMessageCommand(ReadOnlySequence<byte> LastChunk) : MilterCommand(MilterCommandCode.EndOfMessage);

/// <summary>'A' SMFIC_ABORT: empty, never answered.</summary>
public sealed record AbortCommand() : MilterCommand(MilterCommandCode.Abort);

/// <summary>'Q' SMFIC_QUIT: empty, never answered; the connection ends.</summary>
public sealed record QuitCommand() : MilterCommand(MilterCommandCode.Quit);

/// <summary>'K' SMFIC_QUIT_NC: empty, never answered; a new CONNECT follows on the same socket.</summary>
public sealed record QuitNewConnectionCommand() : MilterCommand(MilterCommandCode.QuitNewConnection);

/// <summary>'U' SMFIC_UNKNOWN: the SMTP command line the MTA did not recognise.</summary>
public sealed record UnknownCommand(string CommandLine) : MilterCommand(MilterCommandCode.Unknown);
