namespace MilterSecureList.Filter;

public enum FilterVerdictKind
{
    /// <summary>Not our business (no list recipient) or done: apply the modifications and go on.</summary>
    Continue,
    Reject,
    Tempfail,
}

/// <summary>An SMTP reply with an enhanced status code whose class matches the reply code (RFC 3463;
/// Postfix calls <c>550 4.x.x</c> malformed).</summary>
public sealed record SmtpReply(int Code, string EnhancedCode, string Text)
{
    public override string ToString() => $"{Code} {EnhancedCode} {Text}";
}

/// <summary>A header the filter adds at end of message.</summary>
public sealed record HeaderField(string Name, string Value);

/// <summary>
/// What the list filter decided for one message: a verdict and, for <see cref="FilterVerdictKind.Continue"/>,
/// the modifications in the order they must be applied (envelope and header edits, then the body).
/// Pure data: the milter handler turns it into protocol modifications, <c>securelist check</c> prints it.
/// </summary>
public sealed class FilterDecision : IDisposable
{
    private FilterDecision(FilterVerdictKind kind, SmtpReply? reply, string reason)
    {
        Kind = kind;
        Reply = reply;
        Reason = reason;
    }

    public FilterVerdictKind Kind { get; }

    /// <summary>The reply for a reject or tempfail.</summary>
    public SmtpReply? Reply { get; }

    /// <summary>One line for the log: why this verdict (never content or key material).</summary>
    public string Reason { get; }

    /// <summary>Recipients to delete, exactly as RCPT carried them (libmilter: DELRCPT must match the RCPT form).</summary>
    public List<string> DeleteRecipients { get; } = [];

    /// <summary>Recipients to add (bare addresses).</summary>
    public List<string> AddRecipients { get; } = [];

    public List<HeaderField> AddHeaders { get; } = [];

    /// <summary>A new envelope sender (the list's bounce address), or null.</summary>
    public string? ChangeFrom { get; set; }

    /// <summary>The replacement body (CRLF lines), or null to keep the body. Owned by the decision.</summary>
    public Stream? NewBody { get; set; }

    /// <summary>Lists expanded for this message (canonical addresses).</summary>
    public List<string> Lists { get; } = [];

    /// <summary>Members whose session key was re-wrapped (0 for plaintext passed through).</summary>
    public int MembersRekeyed { get; set; }

    /// <summary>For a key-release list: the post's release message id (32 hex digits), else null.</summary>
    public string? ReleaseMessageId { get; set; }

    /// <summary>Extra copies of a split post queued through [Policy] CopyServer (0: not split).</summary>
    public int CopiesSubmitted { get; set; }

    /// <summary>Members reached through those copies rather than this message's own ADDRCPTs.</summary>
    public int MembersInCopies { get; set; }

    /// <summary>Members left out because they had no usable certificate, with the reason.</summary>
    public List<(string Address, string Problem)> SkippedMembers { get; } = [];

    public bool HasModifications =>
        DeleteRecipients.Count > 0 || AddRecipients.Count > 0 || AddHeaders.Count > 0 || ChangeFrom is not null || NewBody is not null;

    public static FilterDecision Continue(string reason) => new(FilterVerdictKind.Continue, null, reason);

    public static FilterDecision Reject(SmtpReply reply, string reason) => new(FilterVerdictKind.Reject, reply, reason);

    public static FilterDecision Tempfail(SmtpReply reply, string reason) => new(FilterVerdictKind.Tempfail, reply, reason);

    public void Dispose() => NewBody?.Dispose();
}

/// <summary>Reply codes and texts, in one place. Texts tell the sender what to do.</summary>
public static class ReplyTexts
{
    public static SmtpReply Plaintext(string list, string where) =>
        new(550, "5.7.1", $"<{list}> accepts only S/MIME mail encrypted to the list certificate; get the certificate {where} and send again encrypted");

    public static SmtpReply NotForList(string list, string fingerprint) =>
        new(550, "5.7.1", $"message is not encrypted to the certificate of <{list}>; encrypt to the list certificate with SHA-256 fingerprint {fingerprint}");

    public static SmtpReply NonMember(string list) =>
        new(550, "5.7.1", $"<{list}> accepts posts from its members only");

    public static SmtpReply UnsupportedCms(string list, string problem) =>
        new(554, "5.6.0", $"the S/MIME message to <{list}> cannot be processed: {problem}");

    public static SmtpReply MalformedListAddress(string list) =>
        new(553, "5.1.3", $"malformed recipient address; write the list address as <{list}>");

    public static SmtpReply MixedModes() =>
        new(550, "5.7.1", "a message cannot be sent to rekey-mode and double-wrap lists at once; send it to each list separately");

    public static SmtpReply DoubleWrapRequired(string list) =>
        new(550, "5.7.1", $"<{list}> is a double-wrap list: encrypt with `securelist encrypt --to {list}` (the list key and the server certificate)");

    public static SmtpReply MissingCertificate(string member) =>
        new(451, "4.7.0", $"list member <{member}> has no usable certificate; the list owner has to fix it, try again later");

    /// <summary>Every failure on our side: Postfix keeps the mail and the client retries.</summary>
    public static readonly SmtpReply LocalFailure =
        new(451, "4.3.0", "temporary failure in list processing, try again later");

    public static readonly SmtpReply DirectoryUnavailable =
        new(451, "4.3.0", "list directory temporarily unavailable, try again later");

    public static SmtpReply ReleaseListAlone() =>
        new(550, "5.7.1", "a key-release list must be the only list a message is sent to; send it to each list separately");

    /// <summary>The key server could not take a release list's key: Postfix keeps the mail and the client retries.</summary>
    public static readonly SmtpReply KeyServerUnavailable =
        new(451, "4.3.0", "list key server temporarily unavailable, try again later");

    public static readonly SmtpReply EmptyList =
        new(451, "4.7.0", "the list has no member that can receive this post; the list owner has to fix it, try again later");
}
