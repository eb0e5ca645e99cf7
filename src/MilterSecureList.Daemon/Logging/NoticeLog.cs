using Microsoft.Extensions.Logging;

namespace MilterSecureList.Daemon.Logging;

/// <summary>The owner notices' log catalog (event ids kept from when notices were part of the list filter).</summary>
internal static partial class NoticeLog
{
    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "list {List}: member {Member} skipped: {Problem}")]
    public static partial void MemberSkipped(ILogger logger, string list, string member, string problem);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Warning, Message = "notice to {Owner} about list {List} could not be sent: {Error}")]
    public static partial void NoticeFailed(ILogger logger, string owner, string list, string error);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Information, Message = "notice sent to {Owner} about {Count} skipped member(s) of {List}")]
    public static partial void NoticeSent(ILogger logger, string owner, string list, int count);
}
