using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>Why a milter connection ended.</summary>
public enum MilterConnectionEndReason
{
    /// <summary>The MTA sent QUIT.</summary>
    Quit,
    /// <summary>The MTA closed the connection between frames (normal for Postfix after some verdicts).</summary>
    PeerClosed,
    /// <summary>The MTA broke the protocol; see the violation reported before.</summary>
    ProtocolViolation,
    /// <summary>The host is shutting down and the connection was idle.</summary>
    Drained,
    /// <summary>The transport failed (reset, I/O error) or the host aborted the connection.</summary>
    TransportError,
    /// <summary>An unexpected exception in our code; reported through <see cref="IMilterSessionObserver.InternalError"/>.</summary>
    InternalError,
    /// <summary>No OPTNEG within <see cref="MilterSessionOptions.FrameTimeout"/> of connect.</summary>
    NegotiationTimeout,
    /// <summary>A frame that had begun did not complete within <see cref="MilterSessionOptions.FrameTimeout"/>.</summary>
    FrameTimeout,
    /// <summary>No command for <see cref="MilterSessionOptions.IdleTimeout"/>.</summary>
    IdleTimeout,
    /// <summary>The peer did not read our replies within <see cref="MilterSessionOptions.FrameTimeout"/>.</summary>
    WriteTimeout,
}

/// <summary>A per-message budget that was exceeded (or, for the spool, a store that failed).</summary>
public enum MilterMessageLimit
{
    /// <summary><see cref="MilterSessionOptions.MaxHeaderBytes"/> or <see cref="MilterSessionOptions.MaxHeaders"/>.</summary>
    HeaderBytes,
    /// <summary><see cref="MilterSessionOptions.MaxRecipients"/> or <see cref="MilterSessionOptions.MaxRecipientBytes"/>.</summary>
    Recipients,
    /// <summary><see cref="MilterSessionOptions.MaxMacroBytes"/>.</summary>
    MacroBytes,
    /// <summary>Writing the body to the temp file failed (e.g. the disk is full).</summary>
    Spool,
}

/// <summary>
/// Logging seam of the protocol layer (which references no logging framework). All methods are called on the
/// connection's own flow; implementations must be cheap and must not throw. Never passes message content.
/// </summary>
public interface IMilterSessionObserver
{
    void ConnectionOpened(MilterConnectionInfo info) { }

    void Negotiated(MilterConnectionInfo info, uint version, MilterActions actions, MilterProtocolOptions protocol) { }

    /// <summary>The MTA did not offer actions the handler requires; messages will be tempfailed.</summary>
    void ActionsMissing(MilterConnectionInfo info, MilterActions missing) { }

    void MessageCompleted(MilterConnectionInfo info, string? queueId, MilterVerdict verdict, int recipients, long bodyBytes, int modifications) { }

    void MessageTempfailedForMissingActions(MilterConnectionInfo info, string? queueId, MilterActions missing) { }

    void MessageTooLarge(MilterConnectionInfo info, string? queueId, long limit) { }

    void HandlerFailed(MilterConnectionInfo info, string? queueId, string stage, Exception exception) { }

    /// <summary>
    /// The message (or, for <see cref="MilterMessageLimit.Recipients"/> answered at RCPT, a recipient) got
    /// <paramref name="verdict"/> because of <paramref name="limit"/>; reported once per message.
    /// <paramref name="detail"/> names the configured budget or the failure.
    /// </summary>
    void MessageOverLimit(MilterConnectionInfo info, string? queueId, MilterMessageLimit limit, MilterVerdict verdict, string detail) { }

    void ProtocolViolation(MilterConnectionInfo info, MilterViolation reason, string message) { }

    /// <summary>An unexpected exception ended the connection (a bug: the daemon keeps running).</summary>
    void InternalError(MilterConnectionInfo info, Exception exception) { }

    void ConnectionClosed(MilterConnectionInfo info, MilterConnectionEndReason reason, int messages) { }
}

/// <summary>An observer that ignores everything.</summary>
public sealed class NullMilterSessionObserver : IMilterSessionObserver
{
    public static readonly NullMilterSessionObserver Instance = new();
}
