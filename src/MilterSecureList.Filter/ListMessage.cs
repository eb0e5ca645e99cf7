namespace MilterSecureList.Filter;

/// <summary>
/// One message as the filter needs it at end of message: the envelope as received, the header fields
/// (values as the MTA sent them: folded with LF), and the body (CRLF lines, positioned at 0).
/// </summary>
public sealed record ListMessage(
    string Sender,
    IReadOnlyList<string> Recipients,
    IReadOnlyList<HeaderField> Headers,
    Stream Body,
    string QueueId = "");
