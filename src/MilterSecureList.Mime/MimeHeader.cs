namespace MilterSecureList.Mime;

/// <summary>
/// One header field as the milter sees it: the name and the value after the colon. The value may
/// still be folded; Postfix passes fold breaks in a HEADER event as bare LF, and MimeKit, which
/// parses the values, accepts LF, CRLF or no folding at all.
/// </summary>
public readonly record struct MimeHeader(string Name, string Value)
{
    /// <summary>Field names compare without regard to case (RFC 5322 §1.2.2).</summary>
    public bool Is(string name) => string.Equals(Name.Trim(), name, StringComparison.OrdinalIgnoreCase);
}
