namespace MilterSecureList.Filter;

/// <summary>
/// One message as the filter needs it at end of message: the envelope as received, the header fields
/// (values as the MTA sent them: folded with LF), and the body (CRLF lines, positioned at 0).
/// </summary>
/// <param name="OnlyMember">Re-key for this one member only (Exim's transport filter runs once per member,
/// so each copy carries only that member's RecipientInfo); null for the whole list.</param>
/// <param name="ConnectionId">The milter connection, for log lines (with the queue id on every line).</param>
public sealed record ListMessage(
    string Sender,
    IReadOnlyList<string> Recipients,
    IReadOnlyList<HeaderField> Headers,
    Stream Body,
    string QueueId = "",
    string? OnlyMember = null,
    string ConnectionId = "-");
