using Microsoft.Extensions.Logging;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Daemon.Logging;

/// <summary>
/// Log catalog of the milter sessions: every line has one EventId and a fixed template. Per-message lines start with the Postfix queue id
/// (NOQUEUE when unknown) and carry the connection id. No message content is ever logged.
/// </summary>
internal static partial class MilterLog
{
    [LoggerMessage(100, LogLevel.Debug, "conn={ConnectionId} peer={Remote} opened")]
    public static partial void ConnectionOpened(ILogger logger, string connectionId, string remote);

    [LoggerMessage(101, LogLevel.Debug, "conn={ConnectionId} negotiated version={Version} actions=0x{Actions:X} protocol=0x{Protocol:X}")]
    public static partial void Negotiated(ILogger logger, string connectionId, uint version, uint actions, uint protocol);

    [LoggerMessage(102, LogLevel.Warning, "conn={ConnectionId} the MTA does not offer the actions {Missing}; every message on this connection will be tempfailed")]
    public static partial void ActionsMissing(ILogger logger, string connectionId, MilterActions missing);

    [LoggerMessage(103, LogLevel.Information, "{QueueId}: conn={ConnectionId} verdict={Verdict} rcpts={Recipients} body={BodyBytes} edits={Modifications}")]
    public static partial void MessageCompleted(ILogger logger, string queueId, string connectionId, string verdict, int recipients, long bodyBytes, int modifications);

    [LoggerMessage(104, LogLevel.Warning, "{QueueId}: conn={ConnectionId} tempfail: the MTA did not grant the actions {Missing}")]
    public static partial void MessageTempfailedForMissingActions(ILogger logger, string queueId, string connectionId, MilterActions missing);

    [LoggerMessage(105, LogLevel.Warning, "{QueueId}: conn={ConnectionId} rejected 552 5.3.4: body larger than MaxMessageSize={Limit}")]
    public static partial void MessageTooLarge(ILogger logger, string queueId, string connectionId, long limit);

    [LoggerMessage(106, LogLevel.Error, "{QueueId}: conn={ConnectionId} handler failed at {Stage}; message tempfailed")]
    public static partial void HandlerFailed(ILogger logger, string queueId, string connectionId, string stage, Exception exception);

    [LoggerMessage(107, LogLevel.Warning, "conn={ConnectionId} protocol violation {Reason}: {Detail}; connection closed")]
    public static partial void ProtocolViolation(ILogger logger, string connectionId, MilterViolation reason, string detail);

    [LoggerMessage(109, LogLevel.Error, "conn={ConnectionId} internal error; connection closed")]
    public static partial void InternalError(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(108, LogLevel.Debug, "conn={ConnectionId} peer={Peer} closed: {Reason} after {Messages} messages")]
    public static partial void ConnectionClosed(ILogger logger, string connectionId, string peer, MilterConnectionEndReason reason, int messages);

    [LoggerMessage(110, LogLevel.Warning, "conn={ConnectionId} peer={Peer} closed: {Reason}, {What} within {Seconds}s, after {Messages} messages")]
    public static partial void ConnectionTimedOut(ILogger logger, string connectionId, string peer, MilterConnectionEndReason reason, string what, double seconds, int messages);

    [LoggerMessage(111, LogLevel.Warning, "conn={ConnectionId} peer={Peer} refused: not in [Listener] AllowFrom")]
    public static partial void ConnectionRefused(ILogger logger, string connectionId, string peer);

    [LoggerMessage(112, LogLevel.Warning, "{QueueId}: conn={ConnectionId} {Verdict}: {Detail}")]
    public static partial void MessageOverLimit(ILogger logger, string queueId, string connectionId, string verdict, string detail);
}

/// <summary>Adapts the protocol layer's observer seam to <see cref="ILogger"/>.</summary>
internal sealed class LoggingSessionObserver(ILogger<LoggingSessionObserver> logger, MilterSessionOptions options, Hosting.MilterConnectionMetrics metrics) : IMilterSessionObserver
{
    private const string NoQueue = "NOQUEUE";

    public void ConnectionOpened(MilterConnectionInfo info)
    {
        metrics.Opened();
        MilterLog.ConnectionOpened(logger, info.ConnectionId, info.PeerName);
    }

    public void Negotiated(MilterConnectionInfo info, uint version, MilterActions actions, MilterProtocolOptions protocol) => MilterLog.Negotiated(logger, info.ConnectionId, version, (uint)actions, (uint)protocol);

    public void ActionsMissing(MilterConnectionInfo info, MilterActions missing) => MilterLog.ActionsMissing(logger, info.ConnectionId, missing);

    public void MessageCompleted(MilterConnectionInfo info, string? queueId, Protocol.Responses.MilterVerdict verdict, int recipients, long bodyBytes, int modifications) =>
        MilterLog.MessageCompleted(logger, queueId ?? NoQueue, info.ConnectionId, verdict.ToString(), recipients, bodyBytes, modifications);

    public void MessageTempfailedForMissingActions(MilterConnectionInfo info, string? queueId, MilterActions missing) => MilterLog.MessageTempfailedForMissingActions(logger, queueId ?? NoQueue, info.ConnectionId, missing);

    public void MessageTooLarge(MilterConnectionInfo info, string? queueId, long limit) => MilterLog.MessageTooLarge(logger, queueId ?? NoQueue, info.ConnectionId, limit);

    public void HandlerFailed(MilterConnectionInfo info, string? queueId, string stage, Exception exception) => MilterLog.HandlerFailed(logger, queueId ?? NoQueue, info.ConnectionId, stage, exception);

    public void ProtocolViolation(MilterConnectionInfo info, MilterViolation reason, string message) => MilterLog.ProtocolViolation(logger, info.ConnectionId, reason, message);

    public void InternalError(MilterConnectionInfo info, Exception exception) => MilterLog.InternalError(logger, info.ConnectionId, exception);

    public void MessageOverLimit(MilterConnectionInfo info, string? queueId, MilterMessageLimit limit, Protocol.Responses.MilterVerdict verdict, string detail)
    {
        metrics.OverLimit(limit);
        MilterLog.MessageOverLimit(logger, queueId ?? NoQueue, info.ConnectionId, verdict.ToString(), detail);
    }

    public void ConnectionClosed(MilterConnectionInfo info, MilterConnectionEndReason reason, int messages)
    {
        metrics.Closed(reason);
        (string? what, TimeSpan limit) = reason switch
        {
            MilterConnectionEndReason.NegotiationTimeout => ("no OPTNEG", options.FrameTimeout),
            MilterConnectionEndReason.FrameTimeout => ("a frame begun but not completed", options.FrameTimeout),
            MilterConnectionEndReason.IdleTimeout => ("no command", options.IdleTimeout),
            MilterConnectionEndReason.WriteTimeout => ("our replies not read", options.FrameTimeout),
            _ => (null, TimeSpan.Zero),
        };
        if (what is not null)
        {
            MilterLog.ConnectionTimedOut(logger, info.ConnectionId, info.PeerName, reason, what, limit.TotalSeconds, messages);
        }
        else
        {
            MilterLog.ConnectionClosed(logger, info.ConnectionId, info.PeerName, reason, messages);
        }
    }
}
