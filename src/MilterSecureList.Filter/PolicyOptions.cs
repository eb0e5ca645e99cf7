using MilterSecureList.Configuration;
namespace MilterSecureList.Filter;

/// <summary>What to do with a plaintext (not S/MIME-encrypted) message to an encrypted list.</summary>
public enum PlaintextAction
{
    /// <summary>5.7.1 with a text saying where to get the list certificate (default).</summary>
    Reject,

    /// <summary>Expand the list and deliver the message as it is (for lists that also carry public notices).</summary>
    Pass,
}

/// <summary>What to do with a member who has no usable certificate (missing, expired, not yet valid, unusable).</summary>
public enum MissingCertificateAction
{
    /// <summary>Leave the member out of this post and send the list owner a notice (default).</summary>
    Skip,

    /// <summary>Defer the whole message (4.7.0) until the member's certificate is fixed.</summary>
    Tempfail,
}

/// <summary>What to do with a post from an envelope sender who is not a member of a members-only list.</summary>
public enum NonMemberAction
{
    Reject,
    Accept,
}

/// <summary>
/// <c>[Policy]</c>: the defaults for every list; each list can override them with options in the directory
/// (<c>securelist list set LIST --option plaintext=pass</c>). Failures on our side (directory down, key
/// unreadable, spool full, exceptions) are not configurable: they always tempfail, so Postfix keeps the mail.
/// </summary>
public sealed class PolicyOptions
{
    public const string Section = "Policy";

    /// <summary><c>Plaintext = reject | pass</c>.</summary>
    public PlaintextAction Plaintext { get; set; } = PlaintextAction.Reject;

    /// <summary><c>MissingCertificate = skip | tempfail</c>.</summary>
    public MissingCertificateAction MissingCertificate { get; set; } = MissingCertificateAction.Skip;

    /// <summary><c>NonMember = reject | accept</c>: applies to lists whose posting policy is <c>members-only</c>.</summary>
    public NonMemberAction NonMember { get; set; } = NonMemberAction.Reject;

    /// <summary><c>RejectNonMemberAtRcpt = yes | no</c>: refuse a non-member already at RCPT TO (saves the
    /// transfer of the body); otherwise at end of message.</summary>
    public bool RejectNonMemberAtRcpt { get; set; } = true;

    /// <summary><c>SenderCopy = yes | no</c>: a sender who is a member gets a copy of its own post, as list
    /// servers do by default. A list (<c>self-copy=no</c>) or a member can opt out.</summary>
    public bool SenderCopy { get; set; } = true;

    /// <summary><c>ListHeaders = yes | no</c>: add List-Id and List-Post (RFC 2919, RFC 2369).</summary>
    public bool ListHeaders { get; set; } = true;

    /// <summary><c>RecipientDelimiter = +</c>: characters that start an address extension, as Postfix's
    /// <c>recipient_delimiter</c>; <c>list+topic@</c> is delivered to <c>list@</c>.</summary>
    public string RecipientDelimiter { get; set; } = "+";

    /// <summary><c>CertificateUrl</c>: where senders get list certificates, named in the plaintext reject text.
    /// Empty: the text names the list owner instead.</summary>
    public string CertificateUrl { get; set; } = "";

    /// <summary><c>ProgressInterval = 10</c> seconds between PROGRESS packets while a large list is re-keyed
    /// (Postfix's milter_content_timeout is 300 s per read).</summary>
    public int ProgressInterval { get; set; } = 10;

    /// <summary><c>MembersPerCopy = 1000</c>: an encrypted post to more members than this goes out as several
    /// messages, each re-keyed for at most this many members (its CMS carries only their RecipientInfos), so no
    /// copy grows past what members' mail servers accept. The first group stays in the queue file the milter
    /// edits; the others are submitted to <see cref="CopyServer"/> before the milter answers. 0: never split.
    /// Postfix's <c>smtpd_recipient_limit</c> (1000) bounds what one submission may carry.</summary>
    public int MembersPerCopy { get; set; } = 1000;

    /// <summary><c>CopyServer = 127.0.0.1:25</c>: the SMTP server (the local Postfix) that takes the extra copies
    /// of a split post. They are addressed to members only, so the milter passes them untouched.</summary>
    public string CopyServer { get; set; } = "127.0.0.1:25";

    /// <summary>Largest decoded CMS accepted (bytes); bigger S/MIME bodies are refused with 554 5.6.0.
    /// Set by the daemon from <c>[Milter] MaxMessageSize</c>.</summary>
    public long MaxCmsBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Reads the [Policy] keys through <paramref name="value"/> (null = not set); problems are added as
    /// "[Policy] Key: problem". The daemon and the CLI (securelist check) bind the same way.</summary>
    public static PolicyOptions Bind(Func<string, string?> value, List<string> problems)
    {
        var o = new PolicyOptions();
        o.Plaintext = Choice(value, problems, nameof(Plaintext), o.Plaintext, ("reject", PlaintextAction.Reject), ("pass", PlaintextAction.Pass));
        o.MissingCertificate = Choice(value, problems, nameof(MissingCertificate), o.MissingCertificate,
            ("skip", MissingCertificateAction.Skip), ("tempfail", MissingCertificateAction.Tempfail));
        o.NonMember = Choice(value, problems, nameof(NonMember), o.NonMember, ("reject", NonMemberAction.Reject), ("accept", NonMemberAction.Accept));
        o.RejectNonMemberAtRcpt = Bool(value, problems, Section, nameof(RejectNonMemberAtRcpt), o.RejectNonMemberAtRcpt);
        o.SenderCopy = Bool(value, problems, Section, nameof(SenderCopy), o.SenderCopy);
        o.ListHeaders = Bool(value, problems, Section, nameof(ListHeaders), o.ListHeaders);
        o.RecipientDelimiter = value(nameof(RecipientDelimiter)) ?? o.RecipientDelimiter;
        o.CertificateUrl = value(nameof(CertificateUrl)) ?? o.CertificateUrl;
        o.CopyServer = value(nameof(CopyServer)) ?? o.CopyServer;
        o.MembersPerCopy = WholeNumber(value, problems, Section, nameof(MembersPerCopy), o.MembersPerCopy, "a whole number (0 = never split)");

        if (value(nameof(ProgressInterval)) is string p)
        {
            // Seconds, with or without the 's' unit that milter.ini's other durations take.
            if (int.TryParse(p.EndsWith('s') ? p[..^1].TrimEnd() : p, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int seconds))
            {
                o.ProgressInterval = seconds;
            }
            else
            {
                problems.Add($"[{Section}] ProgressInterval: '{p}' is not a whole number of seconds from 1 to 240 (e.g. 10 or 10s)");
            }
        }

        problems.AddRange(o.Validate());
        return o;
    }

    internal static T Choice<T>(Func<string, string?> value, List<string> problems, string key, T defaultValue, params (string Word, T Value)[] choices)
    {
        string? raw = value(key);
        if (raw is null)
        {
            return defaultValue;
        }

        foreach ((string word, T v) in choices)
        {
            if (string.Equals(word, raw, StringComparison.OrdinalIgnoreCase))
            {
                return v;
            }
        }

        problems.Add($"[{Section}] {key}: '{raw}' is not one of: {string.Join(", ", choices.Select(c => c.Word))}");
        return defaultValue;
    }

    /// <summary>A non-negative whole number; otherwise "[Section] Key: 'raw' is not WHAT".</summary>
    public static int WholeNumber(Func<string, string?> value, List<string> problems, string section, string key, int defaultValue, string what)
    {
        string? raw = value(key);
        if (raw is null)
        {
            return defaultValue;
        }

        if (int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n))
        {
            return n;
        }

        problems.Add($"[{section}] {key}: '{raw}' is not {what}");
        return defaultValue;
    }

    public static bool Bool(Func<string, string?> value, List<string> problems, string section, string key, bool defaultValue)
    {
        switch (value(key)?.ToLowerInvariant())
        {
            case null:
                return defaultValue;
            case "yes" or "true" or "on" or "1":
                return true;
            case "no" or "false" or "off" or "0":
                return false;
            default:
                problems.Add($"[{section}] {key}: '{value(key)}' is not yes or no");
                return defaultValue;
        }
    }

    public IEnumerable<string> Validate()
    {
        if (ProgressInterval is < 1 or > 240)
        {
            yield return $"[{Section}] ProgressInterval: must be between 1 and 240 seconds (Postfix waits 300 s)";
        }

        if (MembersPerCopy is < 0 or > 100_000)
        {
            yield return $"[{Section}] MembersPerCopy: must be between 0 (never split) and 100000";
        }

        if (!HostPort.TryParse(CopyServer, out _, out _))
        {
            yield return $"[{Section}] CopyServer: expected HOST:PORT, e.g. 127.0.0.1:25 (got '{CopyServer}')";
        }

        if (RecipientDelimiter.Any(c => c is '@' or '<' or '>' || char.IsWhiteSpace(c) || char.IsLetterOrDigit(c)))
        {
            yield return $"[{Section}] RecipientDelimiter: must be punctuation such as + or - (got '{RecipientDelimiter}')";
        }
    }
}
