using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>Limits of one milter connection. Every limit has its default here.</summary>
public sealed class MilterSessionOptions
{
    /// <summary>Largest frame payload accepted; larger length prefixes close the connection. Default 1 MiB, minimum 65535.</summary>
    public int MaxPayload { get; init; } = MilterLimits.DefaultMaxPayload;

    /// <summary>Body bytes of one message kept in pooled memory before its spool continues in the connection's temp file. Default 2 MiB.</summary>
    public long SpoolThreshold { get; init; } = 2 * 1024 * 1024;

    /// <summary>
    /// Body bytes all connections of one server keep in memory together; beyond it bodies continue in temp files
    /// (<see cref="SpoolMemoryBudget"/>). Default 16 MiB.
    /// </summary>
    public long SpoolMemory { get; init; } = 16 * 1024 * 1024;

    /// <summary>Largest body accepted; beyond it the body is no longer stored and the message gets <see cref="OversizeVerdict"/>. Default 50 MiB.</summary>
    public long MaxMessageSize { get; init; } = 50L * 1024 * 1024;

    /// <summary>Maximum headers kept per message (bounded memory); more is a reason to reject like oversize. Default 1000.</summary>
    public int MaxHeaders { get; init; } = 1000;

    /// <summary>
    /// Header bytes (names and values as received) kept per message; past it the message gets
    /// <see cref="HeaderLimitVerdict"/>. Default 1 MiB: Postfix keeps at most header_size_limit (100 KiB) per header,
    /// and real messages carry a few KiB.
    /// </summary>
    public long MaxHeaderBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// Maximum recipients kept per message. Past it a recipient gets <see cref="RecipientLimitVerdict"/> at RCPT
    /// when the MTA waits for RCPT replies (it then retries that recipient later), else the message gets it at
    /// end of message. Default 10000 (Postfix's smtpd_recipient_limit is 1000).
    /// </summary>
    public int MaxRecipients { get; init; } = 10000;

    /// <summary>RCPT bytes (addresses and ESMTP parameters as received) kept per message; past it as <see cref="MaxRecipients"/>. Default 2 MiB.</summary>
    public long MaxRecipientBytes { get; init; } = 2 * 1024 * 1024;

    /// <summary>
    /// Macro bytes (names and values as received) kept per connection, all stages together. Each MACRO packet
    /// replaces the values of its stage, as libmilter does, so this bounds only what one set of packets can
    /// hold. A packet that does not fit is dropped and the message gets <see cref="MacroLimitVerdict"/>.
    /// Default 64 KiB; Postfix sends a few hundred bytes per stage.
    /// </summary>
    public long MaxMacroBytes { get; init; } = 64 * 1024;

    /// <summary>
    /// How long a frame that has begun may take to arrive completely, how long after connect OPTNEG may take,
    /// and how long a write may wait for the peer to read. Postfix writes each frame at once. Default 10 s.
    /// </summary>
    public TimeSpan FrameTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a connection may stay silent between commands. Postfix keeps its milter connection for the whole
    /// SMTP session and sends nothing while the SMTP client is slow (smtpd_timeout, 300 s, per client command),
    /// so this must be well above that. Default 1 h.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Clock for the timeouts (tests may pass their own).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Directory for spilled bodies. Default: the system temp directory.</summary>
    public string? TempDirectory { get; init; }

    /// <summary>Verdict for a message over a limit: 552 5.3.4 (RFC 3463: message too big for system).</summary>
    public MilterVerdict OversizeVerdict { get; init; } = MilterVerdict.Reply(552, "5.3.4", "Message size exceeds fixed limit");

    /// <summary>Verdict for a message over <see cref="MaxHeaderBytes"/> or <see cref="MaxHeaders"/>: 552 5.3.4 (resending cannot help).</summary>
    public MilterVerdict HeaderLimitVerdict { get; init; } = MilterVerdict.Reply(552, "5.3.4", "Message header size exceeds limit");

    /// <summary>Verdict past <see cref="MaxRecipients"/> or <see cref="MaxRecipientBytes"/>: 452 4.5.3 (RFC 5321 4.5.3.1.10: the client sends the rest later).</summary>
    public MilterVerdict RecipientLimitVerdict { get; init; } = MilterVerdict.Reply(452, "4.5.3", "Too many recipients");

    /// <summary>Verdict when the MTA's macros exceed <see cref="MaxMacroBytes"/>: a local configuration problem, so 451 4.3.0.</summary>
    public MilterVerdict MacroLimitVerdict { get; init; } = MilterVerdict.Reply(451, "4.3.0", "Milter macro data exceeds limit, try again later");

    /// <summary>Verdict when the body cannot be stored (temp directory full or failing): 451 4.3.0.</summary>
    public MilterVerdict SpoolFailureVerdict { get; init; } = MilterVerdict.Reply(451, "4.3.0", "Cannot store the message now, try again later");

    /// <summary>
    /// Flush the output after this many REPLBODY bytes, so a large body never sits whole in the pipe. Each flush
    /// is one gathered send; a host that lets its sockets buffer this much sends a 1 MB body in two calls.
    /// </summary>
    public const int BodyFlushBytes = 512 * 1024;

    /// <summary>Header and envelope edits written between two flushes (1,024 ADDRCPTs are ~30 KB).</summary>
    internal const int ModificationsPerFlush = 1024;
}
