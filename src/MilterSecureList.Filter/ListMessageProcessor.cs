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
public sealed partial class ListMessageProcessor
{
    /// <summary>From this many members on, a PROGRESS goes out before the work starts, not only every interval.</summary>
    internal const int LargeList = 500;

    private readonly IListDirectory _directory;
    private PolicyOptions _policy;
    private readonly IOwnerNotifier _notifier;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly RecipientKeyCache _keys;
    private readonly ICopySubmitter? _copies;

    /// <param name="copies">Where the extra copies of a post split by <see cref="PolicyOptions.MembersPerCopy"/>
    /// go; null (securelist check, the Exim filter) never splits.</param>
    public ListMessageProcessor(IListDirectory directory, PolicyOptions policy, IOwnerNotifier notifier, ILogger logger, TimeProvider? time = null, ICopySubmitter? copies = null)
    {
        _directory = directory;
        _policy = policy;
        _notifier = notifier;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _keys = new RecipientKeyCache(directory);
        _copies = copies;
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
    /// recipient (4.3.0), so the client retries rather than the post being refused. A null
    /// <paramref name="sender"/> (not known at RCPT) leaves the members-only check to the end of message.</summary>
    public RecipientCheck CheckRecipient(string? sender, string recipient, string queueId = "NOQUEUE", string connectionId = "-")
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
            if (sender is not null && defaults.RejectNonMemberAtRcpt && policy.NonMember == NonMemberAction.Reject && !IsMember(sender, list))
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

        if (lists.Count > 1 && lists.Any(l => IsReleaseList(l.List)))
        {
            // A release post carries one release entry naming one list: send it to that list alone.
            return FilterDecision.Reject(ReplyTexts.ReleaseListAlone(), "a key-release list with other lists in one message");
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
        // A post to more than MembersPerCopy members is split: this queue file keeps the first group, each
        // further group becomes a copy of its own, re-keyed for its members only (docs/design.md).
        List<ExpandedMember> here = members;
        ExpandedMember[][] elsewhere = [];
        int perCopy = defaults.MembersPerCopy;
        // A key-release post carries no per-member RecipientInfo, so one copy serves every member: never split.
        if (smime is not null && _copies is not null && perCopy > 0 && members.Count > perCopy
            && !expanded.Any(e => IsReleaseList(e.List)))
        {
            here = members.GetRange(0, perCopy);
            elsewhere = [.. members.Skip(perCopy).Chunk(perCopy)];
        }

        Func<IReadOnlyList<ExpandedMember>, RewrapResult>? rekey = null;
        if (smime is not null)
        {
            (FilterDecision? refusal, rekey) = await RekeyAsync(smime, expanded, here, members.Count, mode, decision, progress, message, defaults, ct).ConfigureAwait(false);
            if (refusal is not null)
            {
                decision.Dispose();
                return refusal;
            }
        }

        // 7. The envelope and headers. DELRCPT uses the RCPT form; ADDRCPT the member's address.
        decision.DeleteRecipients.AddRange(listRcpts);
        decision.AddRecipients.AddRange(here.Select(m => m.Address));
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

        int copies = 1 + elsewhere.Length;
        string Stamp(int rekeyed, int copy) => smime is null
            ? $"{members.Count} members of {string.Join(", ", decision.Lists)}; plaintext passed unchanged"
            : decision.ReleaseMessageId is string release
            ? $"{members.Count} members of {string.Join(", ", decision.Lists)} fetch the key from the key server (release {release})"
            : $"{rekeyed} members re-keyed for {string.Join(", ", decision.Lists)} ({(mode == ListMode.Double ? "double-wrap" : "rekey")} mode)"
              + (copies > 1 ? $", copy {copy} of {copies}" : "");
        var listHeaders = decision.AddHeaders.ToList();
        decision.AddHeaders.Add(new HeaderField("X-SecureList", Stamp(decision.MembersRekeyed, 1)));

        if (expanded.Count == 1 && expanded[0].Policy.BounceAddress is string bounce)
        {
            decision.ChangeFrom = bounce;
        }

        // 8. The other copies, queued before this one is answered: a failure tempfails the whole post.
        if (elsewhere.Length > 0)
        {
            string envelopeSender = decision.ChangeFrom ?? EnvelopeAddress.Canonical(message.Sender, "");
            IAsyncEnumerable<ListCopy> produced = ProduceCopies(elsewhere, rekey!, smime!, message, listHeaders, Stamp, ct);
            var stopwatch = Stopwatch.StartNew();
            int submitted = 0;
            try
            {
                Task<int> work = Task.Run(() => _copies!.SubmitAsync(defaults.CopyServer, envelopeSender, produced, ct), ct);
                await WaitWithProgressAsync(work, progress, defaults, ct).ConfigureAwait(false);
                submitted = await work.ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                FilterLog.CopiesFailed(_logger, message.QueueId, message.ConnectionId, elsewhere.Length, defaults.CopyServer, e.GetType().Name, OneLine(e));
                decision.Dispose();
                return FilterDecision.Tempfail(ReplyTexts.LocalFailure, $"copies to {defaults.CopyServer} failed: {e.GetType().Name}");
            }

            decision.CopiesSubmitted = submitted;
            decision.MembersInCopies = members.Count - here.Count;
            FilterLog.CopiesSubmitted(_logger, message.QueueId, message.ConnectionId, submitted, decision.MembersInCopies, defaults.CopyServer, stopwatch.Elapsed.TotalMilliseconds);
        }

        return decision;
    }

    /// <summary>
    /// Each further group's copy, made when the submitter asks for it (so one copy at a time is in memory): the
    /// post's header fields as received (LF folding turned into CRLF), the list headers, the copy's own stamp, and
    /// the body re-keyed for that group alone.
    /// </summary>
    private static async IAsyncEnumerable<ListCopy> ProduceCopies(
        ExpandedMember[][] groups,
        Func<IReadOnlyList<ExpandedMember>, RewrapResult> rekey,
        SmimeBody smime,
        ListMessage message,
        List<HeaderField> listHeaders,
        Func<int, int, string> stamp,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        for (int g = 0; g < groups.Length; g++)
        {
            ct.ThrowIfCancellationRequested();
            RewrapResult result = await Task.Run(() => rekey(groups[g]), ct).ConfigureAwait(false);
            var text = new MemoryStream();
            foreach (HeaderField h in message.Headers.Concat(listHeaders).Append(new HeaderField("X-SecureList", stamp(result.MembersWrapped, g + 2))))
            {
                string value = h.Value.ReplaceLineEndings("\r\n");
                string line = h.Name + ":" + (value.Length > 0 && value[0] is ' ' or '\t' ? "" : " ") + value + "\r\n";
                text.Write(System.Text.Encoding.UTF8.GetBytes(line));
            }

            text.Write("\r\n"u8);
            await using (Stream body = smime.EncodeBody(result.ContentInfo))
            {
                await body.CopyToAsync(text, ct).ConfigureAwait(false);
            }

            text.Position = 0;
            yield return new ListCopy([.. groups[g].Select(m => m.Address)], text);
        }
    }

    /// <summary>Waits for CPU or SMTP work off the I/O thread; meanwhile PROGRESS keeps Postfix's per-read timeout from firing.</summary>
    private async Task WaitWithProgressAsync(Task work, Func<ValueTask>? progress, PolicyOptions defaults, CancellationToken ct)
    {
        TimeSpan interval = TimeSpan.FromSeconds(defaults.ProgressInterval);
        while (progress is not null && await Task.WhenAny(work, Task.Delay(interval, _time, ct)).ConfigureAwait(false) != work)
        {
            await progress().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Re-keys the post for <paramref name="members"/> into <paramref name="decision"/>'s new body. Returns a refusal,
    /// or the re-key itself for further groups of a split post (same list keys, mode and options).
    /// </summary>
    private async Task<(FilterDecision? Refusal, Func<IReadOnlyList<ExpandedMember>, RewrapResult>? Rekey)> RekeyAsync(
        SmimeBody smime,
        List<(MailingList List, ListPolicy Policy, ExpandedList Members)> expanded,
        List<ExpandedMember> members,
        int allMembers,
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
            return (Refuse(e, expanded[0].List.Address), null);
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
                return (FilterDecision.Reject(ReplyTexts.NotForList(list.Address, Fingerprint(keys)), $"not encrypted to {list.Address}"), null);
            }

            if (mode == ListMode.Double && !info.HasDoubleWrap)
            {
                return (FilterDecision.Reject(ReplyTexts.DoubleWrapRequired(list.Address), $"no double-wrap recipient for {list.Address}"), null);
            }

            listKeys.AddRange(keys);
        }

        if (IsReleaseList(expanded[0].List))
        {
            return (await SealForReleaseAsync(smime, info, expanded[0].List, listKeys, mode, decision, message, ct).ConfigureAwait(false), null);
        }

        // Importing member keys can take seconds on a cold cache of a large list: tell Postfix we are alive first.
        if (progress is not null && allMembers >= LargeList)
        {
            await progress().ConfigureAwait(false);
        }

        // Below LargeList members the wraps run one after the other: the daemon re-keys several messages at once, so
        // spreading one message over the cores only adds thread wake-ups (docs/design.md, "The list filter's cost through
        // Postfix").
        var options = new CmsRewrapOptions { ShareKeyAgreement = expanded.All(e => e.Policy.ShareKeyAgreement), ParallelThreshold = LargeList };
        RewrapResult Rekey(IReadOnlyList<ExpandedMember> group)
        {
            IReadOnlyList<CmsRecipient> recipients = group.Select(m => _keys.GetRecipient(m)).ToList();
            return mode == ListMode.Double
                ? DoubleWrap.Rewrap(info, listKeys, recipients)
                : SessionKeyRewrapper.Rewrap(info, listKeys, recipients, options);
        }

        var stopwatch = Stopwatch.StartNew();

        // It re-wraps the envelope inspected above: the message is parsed once (each further copy re-wraps it too).
        RewrapResult result;
        try
        {
            if (members.Count < LargeList)
            {
                // Milliseconds of CPU at most, far below any PROGRESS interval: done on this thread (in the daemon
                // already a thread-pool thread, never a socket event thread), with no second thread and no timer.
                result = Rekey(members);
            }
            else
            {
                // The CPU work runs off the I/O thread; meanwhile PROGRESS keeps Postfix's per-read timeout from firing.
                Task<RewrapResult> work = Task.Run(() => Rekey(members), ct);
                await WaitWithProgressAsync(work, progress, defaults, ct).ConfigureAwait(false);
                result = await work.ConfigureAwait(false);
            }
        }
        catch (CmsRewrapException e)
        {
            return (Refuse(e, expanded[0].List.Address), null);
        }

        decision.MembersRekeyed = result.MembersWrapped;
        decision.NewBody = smime.EncodeBody(result.ContentInfo);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            string lists = string.Join(",", decision.Lists);
            FilterLog.Rekeyed(_logger, message.QueueId, message.ConnectionId, lists, result.MembersWrapped, stopwatch.Elapsed.TotalMilliseconds);
        }
        return (null, Rekey);
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
