using Microsoft.Extensions.Logging;

namespace MilterSecureList.KeyRelease;

/// <summary>The key server's log catalog. Message ids, addresses and reasons only: never key material. Every release and
/// refusal is an audit row in the database; the per-request lines here are debug level.</summary>
internal static partial class KeyServerLog
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "deposit {MessageId} list={List}: {Outcome}")]
    public static partial void Deposited(ILogger logger, string messageId, string list, DepositOutcome outcome);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Debug, Message = "release {MessageId} to {Member} from {Client}: released (first={First})")]
    public static partial void Released(ILogger logger, string messageId, string member, string client, bool first);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Debug, Message = "release {MessageId} to {Member} from {Client}: refused ({Reason})")]
    public static partial void Refused(ILogger logger, string messageId, string member, string client, string reason);

    [LoggerMessage(EventId = 4110, Level = LogLevel.Information, Message = "release-delete: forgot the key material of {Expired} expired and {AfterAll} fully fetched post(s)")]
    public static partial void Forgot(ILogger logger, int expired, int afterAll);

    [LoggerMessage(EventId = 4111, Level = LogLevel.Warning, Message = "release-delete sweep failed, next try in {Interval}: {Problem}")]
    public static partial void SweepFailed(ILogger logger, TimeSpan interval, string problem);
}
