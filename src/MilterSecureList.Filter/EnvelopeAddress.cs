namespace MilterSecureList.Filter;

/// <summary>
/// Envelope addresses as the milter sees them (RCPT/MAIL argv[0]: <c>&lt;user@domain&gt;</c>, exactly as the
/// client wrote it) and the canonical form we look lists up by.
/// </summary>
public static class EnvelopeAddress
{
    /// <summary>Strips the angle brackets and surrounding blanks; keeps the case (used for DELRCPT, which must
    /// name the recipient as RCPT carried it, and for ADDRCPT).</summary>
    public static string StripBrackets(string raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        string s = raw.Trim();
        if (s.Length >= 2 && s[0] == '<' && s[^1] == '>')
        {
            s = s[1..^1].Trim();
        }

        // A source route (<@relay:user@domain>, RFC 5321 §4.1.2) is obsolete but legal; the mailbox follows the colon.
        if (s.StartsWith('@') && s.IndexOf(':', StringComparison.Ordinal) is int colon and > 0)
        {
            s = s[(colon + 1)..];
        }

        return s;
    }

    /// <summary>
    /// The lookup key for an address: brackets removed, lower-cased, and an address extension removed
    /// (<c>list+topic@example.org</c> → <c>list@example.org</c>, as Postfix's <c>recipient_delimiter</c> does).
    /// Local parts are case-sensitive in theory; no list server treats them so, and neither do we.
    /// </summary>
    public static string Canonical(string raw, string recipientDelimiters = "+")
    {
        string s = StripBrackets(raw).ToLowerInvariant();
        int at = s.LastIndexOf('@');
        if (at <= 0 || string.IsNullOrEmpty(recipientDelimiters))
        {
            return s;
        }

        int cut = s.AsSpan(0, at).IndexOfAny(recipientDelimiters.AsSpan());
        return cut > 0 ? string.Concat(s.AsSpan(0, cut), s.AsSpan(at)) : s;
    }

    /// <summary>The null sender (<c>&lt;&gt;</c>, bounces) never counts as a list member.</summary>
    public static bool IsNullSender(string raw) => StripBrackets(raw).Length == 0;
}
