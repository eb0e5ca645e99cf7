using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;

namespace MilterSecureList.Filter;

/// <summary>Key-release lists (docs/key-release.md): instead of a RecipientInfo per member, the post gets one release
/// entry and its key material goes to the key server before Postfix hears an answer.</summary>
public sealed partial class ListMessageProcessor
{
    /// <summary>The key server client; null when [KeyRelease] is not configured (release lists then tempfail).</summary>
    public IKeyDepository? KeyDepository { get; init; }

    internal static bool IsReleaseList(MailingList list) => list.GetOption(ListOptionKeys.Release) == "on";

    /// <summary>Seals the post for the key server and deposits its key material. Null: done; else the refusal.</summary>
    private async Task<FilterDecision?> SealForReleaseAsync(SmimeBody smime, CmsEnvelopeInfo inspected, MailingList list, IReadOnlyList<ListKey> listKeys, ListMode mode,
        FilterDecision decision, ListMessage message, CancellationToken ct)
    {
        if (KeyDepository is not { } depository)
        {
            FilterLog.KeyServerFailed(_logger, message.QueueId, message.ConnectionId, list.Address, "[KeyRelease] is not configured");
            return FilterDecision.Tempfail(ReplyTexts.KeyServerUnavailable, "key release not configured");
        }

        TimeSpan expiry = ListOptionKeys.TryParseReleaseExpiry(list.GetOption(ListOptionKeys.ReleaseExpiry), out TimeSpan e) ? e : TimeSpan.FromDays(365);
        var policy = new ReleasePolicy(list.Address, mode == ListMode.Double ? ReleaseMode.Double : ReleaseMode.Rekey,
            EnvelopeAddress.Canonical(message.Sender, ""), _time.GetUtcNow() + expiry);
        var stopwatch = Stopwatch.StartNew();
        KeyReleaseSeal seal;
        try
        {
            seal = await Task.Run(() => KeyReleaseSealer.Seal(inspected, listKeys, depository.ReleaseCertificate, depository.KeyServerUrl,
                policy, KeyReleaseEntry.NewMessageId()), ct).ConfigureAwait(false);
        }
        catch (CmsRewrapException ex)
        {
            return Refuse(ex, list.Address);
        }

        try
        {
            await depository.DepositAsync(seal, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Never deliver a post whose key the key server does not hold, and never fall back to per-member keys.
            FilterLog.KeyServerFailed(_logger, message.QueueId, message.ConnectionId, list.Address, OneLine(ex));
            return FilterDecision.Tempfail(ReplyTexts.KeyServerUnavailable, "key server unavailable");
        }

        decision.ReleaseMessageId = seal.Entry.MessageIdHex;
        decision.NewBody = smime.EncodeBody(seal.ContentInfo);
        decision.AddHeaders.Add(new HeaderField("X-SecureList-Release", $"{seal.Entry.MessageIdHex} {depository.KeyServerUrl}"));
        FilterLog.Deposited(_logger, message.QueueId, message.ConnectionId, list.Address, seal.Entry.MessageIdHex, stopwatch.Elapsed.TotalMilliseconds);
        return null;
    }
}
