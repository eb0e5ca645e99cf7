using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Mime;

namespace MilterSecureList.Filter;

/// <summary>The outcome of looking at one RCPT TO.</summary>
public readonly record struct RecipientCheck(bool IsList, SmtpReply? Refusal, bool IsTempfail = false)
{
    public static readonly RecipientCheck NotAList = new(false, null);
}

/// <summary>
/// The list filter's business rule, independent of the milter protocol: given a message to one or more lists,
/// decide the verdict and the modifications (expand, re-key, list headers). The milter handler and
/// <c>securelist check</c> both call this, so what an operator checks offline is what the daemon does.
/// </summary>
public sealed class ListMessageProcessor
{
    /// <summary>From this many members on, a PROGRESS goes out before the work starts, not only every interval.</summary>
    internal const int LargeList = 500;

    private readonly IListDirectory _directory;
    private PolicyOptions _policy;
    private readonly IOwnerNotifier _notifier;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly RecipientKeyCache _keys;

    public ListMessageProcessor(IListDirectory directory, PolicyOptions policy, IOwnerNotifier notifier, ILogger logger, TimeProvider? time = null)
    {
        _directory = directory;
        _policy = policy;
        _notifier = notifier;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _keys = new RecipientKeyCache(directory);
    }

    /// <summary>
    /// The [Policy] defaults in force. Replaced whole on reload (SIGHUP), so a message in progress, which reads
    /// it once, never sees half an old and half a new policy.
    /// </summary>
    public PolicyOptions Policy
    {
        get => Volatile.Read(ref _policy);
        set => Volatile.Write(ref _policy, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>RCPT stage: is this a list, and may this sender post to it? Directory failures tempfail the
    /// recipient (4.3.0), so the client retries rather than the post being refused.</summary>
    public RecipientCheck CheckRecipient(string sender, string recipient, string queueId = "NOQUEUE", string connectionId = "-")
    {
        try
        {
            PolicyOptions defaults = Policy;
            bool wellFormed = EnvelopeAddress.TryCanonical(recipient, defaults.RecipientDelimiter, out string canonical);
            if (!_directory.TryGetList(canonical, out MailingList list))
            {
                return RecipientCheck.NotAList;
            }

            if (!wellFormed)
            {
                return new RecipientCheck(true, ReplyTexts.MalformedListAddress(list.Address));
            }

            ListPolicy policy = ListPolicy.For(list, defaults);
            if (defaults.RejectNonMemberAtRcpt && policy.NonMember == NonMemberAction.Reject && !IsMember(sender, list))
            {
                return new RecipientCheck(true, ReplyTexts.NonMember(list.Address));
            }

            return new RecipientCheck(true, null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            FilterLog.DirectoryFailed(_logger, queueId, connectionId, e.GetType().Name, OneLine(e));
            return new RecipientCheck(true, ReplyTexts.DirectoryUnavailable, IsTempfail: true);
        }
    }

    /// <summary>End of message. Never throws: every failure on our side becomes a tempfail with a log line.</summary>
    public async Task<FilterDecision> ProcessAsync(ListMessage message, Func<ValueTask>? progress = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ProcessCoreAsync(message, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // The exception text names the failing step (key file, database); it never holds key material.
            FilterLog.LocalFailure(_logger, message.QueueId, message.ConnectionId, e.GetType().Name, OneLine(e));
            return FilterDecision.Tempfail(ReplyTexts.LocalFailure, $"local failure: {e.GetType().Name}");
        }
    }

    private async Task<FilterDecision> ProcessCoreAsync(ListMessage message, Func<ValueTask>? progress, CancellationToken ct)
    {
        PolicyOptions defaults = Policy;

        // 1. Which recipients are lists? Keep the RCPT form of each for DELRCPT.
        var lists = new List<(MailingList List, ListPolicy Policy)>();
        var listRcpts = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (string rcpt in message.Recipients)
            {
                bool wellFormed = EnvelopeAddress.TryCanonical(rcpt, defaults.RecipientDelimiter, out string canonical);
                if (_directory.TryGetList(canonical, out MailingList list))
                {
                    if (!wellFormed)
                    {
                        // A spelling Postfix might still deliver to the list, unexpanded: never let it pass.
                        return FilterDecision.Reject(ReplyTexts.MalformedListAddress(list.Address), $"malformed spelling of {list.Address}");
                    }

                    listRcpts.Add(rcpt);
                    if (seen.Add(list.Address.ToLowerInvariant()))
                    {
                        lists.Add((list, ListPolicy.For(list, defaults)));
                    }
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            FilterLog.DirectoryFailed(_logger, message.QueueId, message.ConnectionId, e.GetType().Name, OneLine(e));
            return FilterDecision.Tempfail(ReplyTexts.DirectoryUnavailable, "directory unavailable");
        }

        if (lists.Count == 0)
        {
            return FilterDecision.Continue("no list recipient");
        }

        // 2. One body goes to every recipient, so all lists of one message must share a mode.
        ListMode mode = lists[0].List.Mode;
        if (lists.Any(l => l.List.Mode != mode))
        {
            return FilterDecision.Reject(ReplyTexts.MixedModes(), "rekey and double-wrap lists in one message");
        }

        // 3. Expand (recursive, de-duplicated by the directory) and check the posting policy.
        var expanded = new List<(MailingList List, ListPolicy Policy, ExpandedList Members)>();
        try
        {
            foreach ((MailingList list, ListPolicy policy) in lists)
            {
                expanded.Add((list, policy, _directory.Expand(list.Address)));
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            FilterLog.DirectoryFailed(_logger, message.QueueId, message.ConnectionId, e.GetType().Name, OneLine(e));
            return FilterDecision.Tempfail(ReplyTexts.DirectoryUnavailable, "directory unavailable");
        }

        string sender = EnvelopeAddress.Canonical(message.Sender, "");
        foreach ((MailingList list, ListPolicy policy, ExpandedList expansion) in expanded)
        {
            if (policy.NonMember == NonMemberAction.Reject && !expansion.Contains(sender))
            {
                return FilterDecision.Reject(ReplyTexts.NonMember(list.Address), $"sender is not a member of {list.Address}");
            }
        }

        // 4. Is it S/MIME enveloped data at all?
        SmimeBody? smime;
        try
        {
            smime = SmimeBody.TryRead(message.Headers, message.Body, defaults.MaxCmsBytes);
        }
        catch (MimeFormatException e)
        {
            return FilterDecision.Reject(ReplyTexts.UnsupportedCms(lists[0].List.Address, e.Message), $"mime: {e.Message}");
        }
        if (smime is null)
        {
            foreach ((MailingList list, ListPolicy policy, _) in expanded)
            {
                if (policy.Plaintext == PlaintextAction.Reject)
                {
                    return FilterDecision.Reject(ReplyTexts.Plaintext(list.Address, policy.CertificateWhere), $"plaintext to {list.Address}");
                }
            }

            if (mode == ListMode.Double)
            {
                return FilterDecision.Reject(ReplyTexts.DoubleWrapRequired(lists[0].List.Address), "plaintext to a double-wrap list");
            }
        }

        // 5. The members: the union over all lists, each address once, the sender's own copy per policy.
        FilterDecision decision = FilterDecision.Continue(smime is null ? "plaintext passed" : "re-keyed");
        var members = new List<ExpandedMember>();
        var memberSeen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach ((MailingList list, ListPolicy policy, ExpandedList listMembers) in expanded)
        {
            decision.Lists.Add(list.Address);
            foreach (ExpandedMember m in listMembers.Members)
            {
                if (!m.DeliveryEnabled || !memberSeen.Add(m.Address)
                    || (message.OnlyMember is not null && !SameAddress(m.Address, message.OnlyMember)))
                {
                    continue;
                }

                if (SameAddress(m.Address, sender) && !(policy.SenderCopy && m.SelfCopy))
                {
                    continue;
                }

                if (smime is not null && m.Status != CertificateStatus.Usable)
                {
                    string problem = m.Problem ?? m.Status.ToString();
                    if (policy.MissingCertificate == MissingCertificateAction.Tempfail)
                    {
                        return FilterDecision.Tempfail(ReplyTexts.MissingCertificate(m.Address), $"member {m.Address}: {problem}");
                    }

                    decision.SkippedMembers.Add((m.Address, problem));
                    _notifier.MemberSkipped(list, m.Address, problem);
                    continue;
                }

                members.Add(m);
            }
        }

        if (members.Count == 0)
        {
            return FilterDecision.Tempfail(ReplyTexts.EmptyList, "no deliverable member");
        }

        // 6. Re-key: recover the session key once, wrap it per member; the encrypted content is copied verbatim.
        if (smime is not null)
        {
            FilterDecision? refusal = await RekeyAsync(smime, expanded, members, mode, decision, progress, message, defaults, ct).ConfigureAwait(false);
            if (refusal is not null)
            {
                decision.Dispose();
                return refusal;
            }
        }

        // 7. The envelope and headers. DELRCPT uses the RCPT form; ADDRCPT the member's address.
        decision.DeleteRecipients.AddRange(listRcpts);
        decision.AddRecipients.AddRange(members.Select(m => m.Address));
        if (expanded.Count == 1 && expanded[0].Policy.ListHeaders)
        {
            MailingList list = expanded[0].List;
            decision.AddHeaders.Add(new HeaderField("List-Id", ListId(list.Address)));
            decision.AddHeaders.Add(new HeaderField("List-Post", $"<mailto:{list.Address}>"));
            if (!string.IsNullOrEmpty(list.Owner))
            {
                decision.AddHeaders.Add(new HeaderField("List-Owner", $"<mailto:{list.Owner}>"));
            }
        }

        decision.AddHeaders.Add(new HeaderField("X-SecureList",
            smime is null
                ? $"{members.Count} members of {string.Join(", ", decision.Lists)}; plaintext passed unchanged"
                : $"{decision.MembersRekeyed} members re-keyed for {string.Join(", ", decision.Lists)} ({(mode == ListMode.Double ? "double-wrap" : "rekey")} mode)"));

        if (expanded.Count == 1 && expanded[0].Policy.BounceAddress is string bounce)
        {
            decision.ChangeFrom = bounce;
        }

        return decision;
    }

    private async Task<FilterDecision?> RekeyAsync(
        SmimeBody smime,
        List<(MailingList List, ListPolicy Policy, ExpandedList Members)> expanded,
        List<ExpandedMember> members,
        ListMode mode,
        FilterDecision decision,
        Func<ValueTask>? progress,
        ListMessage message,
        PolicyOptions defaults,
        CancellationToken ct)
    {
        CmsEnvelopeInfo info;
        try
        {
            info = SessionKeyRewrapper.Inspect(smime.ContentInfo);
        }
        catch (CmsRewrapException e)
        {
            return Refuse(e, expanded[0].List.Address);
        }

        // Every list of the message must be able to recover the session key from its own RecipientInfo.
        var listKeys = new List<ListKey>();
        foreach ((MailingList list, _, _) in expanded)
        {
            IReadOnlyList<ListKey> keys = _keys.GetListKeys(list.Address);
            if (keys.Count == 0)
            {
                throw new InvalidOperationException($"list {list.Address} has no key pair");
            }

            if (mode == ListMode.Rekey && info.FindListKey(keys) is null)
            {
                return FilterDecision.Reject(ReplyTexts.NotForList(list.Address, Fingerprint(keys)), $"not encrypted to {list.Address}");
            }

            if (mode == ListMode.Double && !info.HasDoubleWrap)
            {
                return FilterDecision.Reject(ReplyTexts.DoubleWrapRequired(list.Address), $"no double-wrap recipient for {list.Address}");
            }

            listKeys.AddRange(keys);
        }

        // Importing member keys can take seconds on a cold cache of a large list: tell Postfix we are alive first.
        if (progress is not null && members.Count >= LargeList)
        {
            await progress().ConfigureAwait(false);
        }

        IReadOnlyList<CmsRecipient> recipients = members.Select(m => _keys.GetRecipient(m)).ToList();
        var stopwatch = Stopwatch.StartNew();

        // The CPU work runs off the I/O thread; meanwhile PROGRESS keeps Postfix's per-read timeout from firing.
        // It re-wraps the envelope inspected above: the message is parsed once.
        Task<RewrapResult> work = Task.Run(() => mode == ListMode.Double
            ? DoubleWrap.Rewrap(info, listKeys, recipients)
            : SessionKeyRewrapper.Rewrap(info, listKeys, recipients,
                new CmsRewrapOptions { ShareKeyAgreement = expanded.All(e => e.Policy.ShareKeyAgreement) }), ct);
        TimeSpan interval = TimeSpan.FromSeconds(defaults.ProgressInterval);
        while (progress is not null && await Task.WhenAny(work, Task.Delay(interval, _time, ct)).ConfigureAwait(false) != work)
        {
            await progress().ConfigureAwait(false);
        }

        RewrapResult result;
        try
        {
            result = await work.ConfigureAwait(false);
        }
        catch (CmsRewrapException e)
        {
            return Refuse(e, expanded[0].List.Address);
        }

        decision.MembersRekeyed = result.MembersWrapped;
        decision.NewBody = smime.EncodeBody(result.ContentInfo);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            string lists = string.Join(",", decision.Lists);
            FilterLog.Rekeyed(_logger, message.QueueId, message.ConnectionId, lists, result.MembersWrapped, stopwatch.Elapsed.TotalMilliseconds);
        }
        return null;
    }

    /// <summary>What the sender can fix is refused (5xx); anything else is our problem and tempfails.</summary>
    private FilterDecision Refuse(CmsRewrapException e, string list) => e.Reason switch
    {
        CmsRewrapFailure.NotEnvelopedData or CmsRewrapFailure.Malformed or CmsRewrapFailure.UnsupportedAlgorithm or CmsRewrapFailure.LimitExceeded =>
            FilterDecision.Reject(ReplyTexts.UnsupportedCms(list, e.Message), $"cms: {e.Reason}"),
        CmsRewrapFailure.NotForThisList =>
            FilterDecision.Reject(ReplyTexts.NotForList(list, Fingerprint(_keys.GetListKeys(list))), "cms: not for this list"),
        _ => FilterDecision.Tempfail(ReplyTexts.LocalFailure, $"cms: {e.Reason}"),
    };

    private bool IsMember(string sender, MailingList list)
    {
        string s = EnvelopeAddress.Canonical(sender, "");
        return s.Length > 0 && _directory.Expand(list.Address).Contains(s);
    }

    private static bool SameAddress(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    /// <summary>RFC 2919 §2: list-id = a dot-atom made from the list address, here local-part "." domain.</summary>
    internal static string ListId(string address)
    {
        int at = address.LastIndexOf('@');
        string id = at > 0 ? $"{address[..at]}.{address[(at + 1)..]}" : address;
        var clean = new string(id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '-').ToArray());
        return $"<{clean}>";
    }

    private static string Fingerprint(IReadOnlyList<ListKey> keys)
    {
        ListKey? current = keys.Count > 0 ? keys[0] : null;
        return current is null ? "(none)" : Convert.ToHexString(current.Certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
    }

    private static string OneLine(Exception e) => e.Message.ReplaceLineEndings(" ");
}
