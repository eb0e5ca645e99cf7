using System.Text;

namespace MilterSecureList.Filter;

/// <summary>
/// Envelope addresses as the milter sees them (RCPT/MAIL argv[0]: <c>&lt;user@domain&gt;</c>, exactly as the
/// client wrote it) and the canonical form we look lists up by.
/// </summary>
/// <remarks>
/// Postfix rewrites every spelling of an address that RFC 5321 allows to one form before it queues the
/// recipient: <c>"crypto"@lists.example.org</c>, <c>"cry\pto"@lists.example.org</c>,
/// <c>crypto@lists.example.org.</c> and <c>&lt;@relay:crypto@lists.example.org&gt;</c> all reach
/// <c>crypto@lists.example.org</c>. The milter gets the address as the client wrote it, so it has to do the
/// same rewriting, or a spelling would slip past the list as "not a list" (see docs/design.md, Message flow).
/// </remarks>
public static class EnvelopeAddress
{
    /// <summary>Longer than any SMTP command line (RFC 5321 §4.5.3.1.4 allows 512 octets): not an address.</summary>
    public const int MaxLength = 1024;

    private static readonly char[] Blanks = [' ', '\t'];

    private static readonly System.Buffers.SearchValues<char> NotInLiteral = System.Buffers.SearchValues.Create("[]\\ \t\r\n\0");

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
    /// The lookup key for an address: brackets and source route removed, a quoted local part unquoted (quoted
    /// pairs included), a trailing dot of the domain removed, lower-cased, and an address extension removed
    /// (<c>list+topic@example.org</c> → <c>list@example.org</c>, as Postfix's <c>recipient_delimiter</c> does).
    /// Local parts are case-sensitive in theory; no list server treats them so, and neither do we.
    /// For an address that does not parse this is a best effort; <see cref="TryCanonical"/> says which.
    /// </summary>
    public static string Canonical(string raw, string recipientDelimiters = "+")
    {
        TryCanonical(raw, recipientDelimiters, out string canonical);
        return canonical;
    }

    /// <summary>
    /// <see cref="Canonical"/>, and whether <paramref name="raw"/> is a well-formed RFC 5321 path (or a bare
    /// mailbox). When it is not, <paramref name="canonical"/> is still the best guess at the mailbox meant, so
    /// a caller can refuse a malformed spelling of a list rather than pass it as "not a list".
    /// </summary>
    public static bool TryCanonical(string raw, string recipientDelimiters, out string canonical)
    {
        ArgumentNullException.ThrowIfNull(raw);
        bool ok = raw.Length <= MaxLength;
        string s = raw.Trim(Blanks);

        if (s.StartsWith('<'))
        {
            if (s.EndsWith('>') && s.Length >= 2)
            {
                s = s[1..^1].Trim(Blanks);
            }
            else
            {
                ok = false;
                s = s[1..].Trim(Blanks);
            }
        }
        else if (s.EndsWith('>'))
        {
            ok = false;
            s = s[..^1].Trim(Blanks);
        }

        // Source route (RFC 5321 §4.1.2: "@a,@b:"); Postfix ignores it, and so do we. A route holds no quotes.
        if (s.StartsWith('@'))
        {
            int colon = s.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                ok = false;
                s = s[1..];
            }
            else
            {
                ok &= IsRoute(s.AsSpan(0, colon));
                s = s[(colon + 1)..];
            }
        }

        var local = new StringBuilder(Math.Min(s.Length, MaxLength));
        int i = 0;
        if (s.StartsWith('"'))
        {
            // Quoted-string = DQUOTE *( qtextSMTP / "\" %d32-126 ) DQUOTE. Its value is the text with the
            // backslashes removed; "crypto" and "cry\pto" are the mailbox crypto.
            bool closed = false;
            for (i = 1; i < s.Length; i++)
            {
                char c = s[i];
                if (c == '"')
                {
                    closed = true;
                    i++;
                    break;
                }

                if (c == '\\')
                {
                    if (i + 1 >= s.Length)
                    {
                        ok = false;
                        break;
                    }

                    c = s[++i];
                }

                ok &= IsQuotedText(c);
                local.Append(c);
            }

            if (!closed)
            {
                // Unbalanced quote or a backslash at the end: guess the mailbox from the last '@', dropping the
                // quoting characters, so that a list spelt this way is refused rather than passed.
                ok = false;
                string body = s[1..];
                int lastAt = body.LastIndexOf('@');
                local.Clear().Append(StripQuoting(lastAt < 0 ? body : body[..lastAt]));
                s = lastAt < 0 ? "" : "@" + StripQuoting(body[(lastAt + 1)..]);
                i = 0;
            }
        }
        else
        {
            for (; i < s.Length && s[i] != '@'; i++)
            {
                char c = s[i];
                ok &= IsAtomText(c) || c == '.';
                local.Append(c);
            }

            ok &= local.Length == 0 ? s.Length == 0 || s[0] != '@' : IsDotString(local);
            if (!ok)
            {
                // cry"pto"@ or cry\pto@: a lenient parser would read crypto; so does our best guess.
                string guess = StripQuoting(local.ToString());
                local.Clear().Append(guess);
            }
        }

        string domain = "";
        if (i < s.Length)
        {
            if (s[i] == '@')
            {
                domain = s[(i + 1)..];
            }
            else
            {
                // Text between the closing quote and the '@' ("cry"pto@...): keep it, as a careless parser would.
                ok = false;
                int at = s.IndexOf('@', i);
                local.Append(StripQuoting(s[i..(at < 0 ? s.Length : at)]));
                domain = at < 0 ? "" : s[(at + 1)..];
            }
        }

        // "example.org." is the same domain as "example.org" (the root label is implied); Postfix strips the dot.
        if (domain.EndsWith('.') && !domain.EndsWith("..", StringComparison.Ordinal))
        {
            domain = domain[..^1];
        }

        if (domain.Length > 0)
        {
            ok &= IsDomain(domain);
            domain = domain.Trim().TrimEnd('.'); // best guess only: "example.org\r\n" or "example.org.." is malformed
        }
        else if (i < s.Length)
        {
            ok = false; // "user@" with nothing after the '@'
        }

        string localPart = local.ToString().ToLowerInvariant();
        ok &= localPart.Length > 0 || (domain.Length == 0 && s.Length == 0); // <> is the null sender, well-formed
        if (!string.IsNullOrEmpty(recipientDelimiters) && domain.Length > 0)
        {
            int cut = localPart.AsSpan().IndexOfAny(recipientDelimiters.AsSpan());
            if (cut > 0)
            {
                localPart = localPart[..cut];
            }
        }

        canonical = domain.Length > 0 || i < s.Length ? $"{localPart}@{domain.ToLowerInvariant()}" : localPart;
        return ok;
    }

    private static string StripQuoting(string s) => s.Replace("\"", "", StringComparison.Ordinal).Replace("\\", "", StringComparison.Ordinal);

    /// <summary>The null sender (<c>&lt;&gt;</c>, bounces) never counts as a list member.</summary>
    public static bool IsNullSender(string raw) => StripBrackets(raw).Length == 0;

    // RFC 5321 §4.1.2 qtextSMTP / quoted-pairSMTP: printable ASCII and space; RFC 6531 adds UTF-8 beyond ASCII.
    private static bool IsQuotedText(char c) => c is >= ' ' and <= '~' || c > '\u007f' && !char.IsControl(c);

    // RFC 5322 atext (RFC 5321 Atom), plus UTF-8 beyond ASCII as RFC 6531 allows.
    private static bool IsAtomText(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-/=?^_`{|}~".Contains(c, StringComparison.Ordinal) || c > '\u007f' && !char.IsControl(c);

    private static bool IsDotString(StringBuilder s)
    {
        if (s.Length == 0 || s[0] == '.' || s[^1] == '.')
        {
            return false;
        }

        for (int k = 1; k < s.Length; k++)
        {
            if (s[k] == '.' && s[k - 1] == '.')
            {
                return false;
            }
        }

        return true;
    }

    // Domain = sub-domain *("." sub-domain), or an address literal "[...]".
    private static bool IsDomain(string d)
    {
        if (d.StartsWith('[') && d.EndsWith(']'))
        {
            return d.Length > 2 && d.AsSpan(1, d.Length - 2).IndexOfAny(NotInLiteral) < 0;
        }

        foreach (string label in d.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-'
                || !label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c > '\u007f' && !char.IsControl(c)))
            {
                return false;
            }
        }

        return true;
    }

    // A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain.
    private static bool IsRoute(ReadOnlySpan<char> route)
    {
        foreach (string hop in route.ToString().Split(','))
        {
            if (!hop.StartsWith('@') || !IsDomain(hop[1..]))
            {
                return false;
            }
        }

        return true;
    }
}
