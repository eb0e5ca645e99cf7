using System.Net;
using MilterSecureList.Protocol.Commands;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>
/// What the transport knows about one milter connection (from the MTA, not the SMTP client). <paramref name="Peer"/>
/// names the peer for log lines when the endpoint cannot (a unix socket peer's process and user).
/// </summary>
public sealed record MilterConnectionInfo(string ConnectionId, EndPoint? RemoteEndPoint = null, EndPoint? LocalEndPoint = null, string? Peer = null)
{
    /// <summary>The peer for log lines: <see cref="Peer"/>, else the remote endpoint, else "unknown".</summary>
    public string PeerName => Peer ?? (RemoteEndPoint is { } ep && ep.ToString() is { Length: > 0 } s ? s : "unknown");
}

/// <summary>Creates one <see cref="IMilterHandler"/> per milter connection (and again after QUIT_NC).</summary>
public interface IMilterHandlerFactory
{
    IMilterHandler Create(MilterConnectionInfo info);
}

/// <summary>MTA events a handler wants to decide on. Events not listed are not sent, or sent with no reply expected.</summary>
[Flags]
public enum MilterEvents
{
    None = 0,
    Connect = 1 << 0,
    Helo = 1 << 1,
    MailFrom = 1 << 2,
    Recipient = 1 << 3,
    Data = 1 << 4,
    Header = 1 << 5,
    EndOfHeaders = 1 << 6,
    Unknown = 1 << 7,
}

/// <summary>
/// What a handler needs from the session. Negotiation is derived from it (docs/protocol.md §5):
/// events outside <see cref="Events"/> are switched off with SMFIP_NO* or, when the session still needs the
/// data for the end-of-message context (envelope, headers, body), asked for with SMFIP_NR_* so the MTA
/// pipelines them.
/// </summary>
public sealed class MilterHandlerCapabilities
{
    /// <summary>Events that call the handler and get its verdict as the reply.</summary>
    public MilterEvents Events { get; init; }

    /// <summary>Actions the handler cannot work without. If the MTA does not offer them, every message is tempfailed.</summary>
    public MilterActions RequiredActions { get; init; }

    /// <summary>Actions negotiated when offered; using one that was not offered throws.</summary>
    public MilterActions OptionalActions { get; init; }

    /// <summary>Whether the end-of-message context needs the headers (else SMFIP_NOHDRS).</summary>
    public bool NeedsHeaders { get; init; } = true;

    /// <summary>Whether the end-of-message context needs the body (else SMFIP_NOBODY).</summary>
    public bool NeedsBody { get; init; } = true;

    /// <summary>Ask for SMFIP_HDR_LEADSPC: header values keep their leading whitespace, both ways.</summary>
    public bool HeaderLeadingSpace { get; init; }

    /// <summary>Extra macros per stage (space-separated names). The session always asks for <c>i</c> at EOM.</summary>
    public IReadOnlyDictionary<MacroStage, string>? MacroRequests { get; init; }

    /// <summary>
    /// Run every call of this handler on the thread pool instead of the thread that read the frame. The daemon
    /// reads and writes sockets on a few event threads (one per core) that serve all connections; a handler that
    /// can block or spend milliseconds (directory lookups, RSA for a thousand members) must set this so it never
    /// holds up other connections' I/O. Handlers that answer in microseconds leave it false: a thread hop per
    /// event would cost more than the work.
    /// </summary>
    public bool RunOnThreadPool { get; init; }

    /// <summary>
    /// Events called on the reading thread even with <see cref="RunOnThreadPool"/>: the ones this handler answers
    /// from memory in microseconds. Each thread-pool call costs a thread wake-up and a context switch, which on a
    /// shared machine cost more than such an event's work (docs/design.md, "The list filter's cost through Postfix").
    /// </summary>
    public MilterEvents InlineEvents { get; init; }
}

/// <summary>
/// Business code behind the milter. One instance per connection; calls are sequential, never concurrent.
/// Every event returns a verdict; <see cref="MilterVerdict.Continue"/> lets the MTA go on. Modifications are
/// possible only through the <see cref="MilterMessageContext"/> given to <see cref="OnEndOfMessageAsync"/>.
/// An exception thrown by a handler tempfails the current message and is reported to the observer.
/// </summary>
public interface IMilterHandler
{
    MilterHandlerCapabilities Capabilities { get; }

    ValueTask<MilterVerdict> OnConnectAsync(ConnectCommand connect, IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);

    ValueTask<MilterVerdict> OnHeloAsync(string heloName, IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);

    /// <summary>MAIL FROM: the sender as the client wrote it (angle brackets included) and its ESMTP parameters.</summary>
    ValueTask<MilterVerdict> OnMailFromAsync(string sender, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);

    /// <summary>RCPT TO. A non-continue verdict rejects only this recipient (it is then left out of the envelope).</summary>
    ValueTask<MilterVerdict> OnRecipientAsync(string recipient, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);

    ValueTask<MilterVerdict> OnDataAsync(IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);

    ValueTask<MilterVerdict> OnHeaderAsync(string name, string value, IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);

    ValueTask<MilterVerdict> OnEndOfHeadersAsync(IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);

    /// <summary>The message is complete. The context is valid only until this call's task completes.</summary>
    ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken);

    /// <summary>The open message was abandoned (ABORT before end-of-message). Connection state stays.</summary>
    ValueTask OnAbortAsync(CancellationToken cancellationToken) => default;

    ValueTask<MilterVerdict> OnUnknownAsync(string commandLine, IMacroLookup macros, CancellationToken cancellationToken) => new(MilterVerdict.Continue);
}
