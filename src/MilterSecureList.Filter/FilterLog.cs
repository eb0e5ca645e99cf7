using Microsoft.Extensions.Logging;

namespace MilterSecureList.Filter;

/// <summary>The list filter's log catalog. Every line starts with the Postfix queue id.
/// Never logs content, session keys or key material.</summary>
internal static partial class FilterLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "{QueueId}: conn={ConnectionId} lists={Lists} members={Members} re-keyed in {Milliseconds:F1} ms")]
    public static partial void Rekeyed(ILogger logger, string queueId, string connectionId, string lists, int members, double milliseconds);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "{QueueId}: conn={ConnectionId} {Verdict} {Reply} ({Reason})")]
    public static partial void Verdict(ILogger logger, string queueId, string connectionId, string verdict, string reply, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error, Message = "{QueueId}: conn={ConnectionId} list directory failure, tempfail: {Error}: {Detail}")]
    public static partial void DirectoryFailed(ILogger logger, string queueId, string connectionId, string error, string detail);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Error, Message = "{QueueId}: conn={ConnectionId} local failure, tempfail: {Error}: {Detail}")]
    public static partial void LocalFailure(ILogger logger, string queueId, string connectionId, string error, string detail);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Information, Message = "{QueueId}: conn={ConnectionId} list={List} key deposited as release {ReleaseId} in {Milliseconds:F1} ms")]
    public static partial void Deposited(ILogger logger, string queueId, string connectionId, string list, string releaseId, double milliseconds);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Error, Message = "{QueueId}: conn={ConnectionId} list={List} key server failure, tempfail: {Detail}")]
    public static partial void KeyServerFailed(ILogger logger, string queueId, string connectionId, string list, string detail);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Information, Message = "{QueueId}: conn={ConnectionId} {Copies} further copies for {Members} members queued through {Server} in {Milliseconds:F1} ms")]
    public static partial void CopiesSubmitted(ILogger logger, string queueId, string connectionId, int copies, int members, string server, double milliseconds);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Error, Message = "{QueueId}: conn={ConnectionId} split post, {Copies} further copies through {Server} failed, tempfail (copies queued before the failure go out again when the client retries): {Error}: {Detail}")]
    public static partial void CopiesFailed(ILogger logger, string queueId, string connectionId, int copies, string server, string error, string detail);
}
