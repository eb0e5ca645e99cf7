using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;

namespace MilterSecureList.KeyRelease;

/// <summary>The release checks' tunables (<c>[KeyServer]</c>).</summary>
public sealed class KeyReleaseServiceOptions
{
    /// <summary>How far a request's time may be from the server's clock; nonces are kept twice as long.</summary>
    public TimeSpan ReplayWindow { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Requests per minute per member (per key-server node).</summary>
    public int RateLimitPerMinute { get; init; } = 60;
}

/// <summary>The result of a deposit, as the HTTP layer answers it.</summary>
public enum DepositStatus
{
    Stored,
    AlreadyStored,
    Conflict,
    /// <summary>Malformed, wrong key id, binding mismatch.</summary>
    Invalid,
    /// <summary>The policy's list does not exist or is not a release list.</summary>
    Forbidden,
}

/// <summary>What the key server answers a release request with.</summary>
public sealed record ReleaseOutcome(bool Released, byte[]? RecipientInfo, bool FirstRelease, string Reason)
{
    /// <summary>The deposit released (for the receipt); set only on a release.</summary>
    internal ReleaseRecord? Record { get; init; }

    public static ReleaseOutcome Refused(string reason) => new(false, null, false, reason);
}

/// <summary>
/// The key server's business rule (docs/key-release.md §4): take deposits and answer release requests after every
/// check. Protocol-independent: the HTTPS host, the tests and the benchmark call it directly. A refusal carries the
/// failed check for the audit row and the log only; callers answer every refusal the same way.
/// </summary>
public sealed class KeyReleaseService
{
    private readonly ReleaseStore _store;
    private readonly IListDirectory _directory;
    private readonly ListKey _releaseKey;
    private readonly byte[] _keyId;
    private readonly KeyReleaseServiceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IReleaseReceipts? _receipts;
    private readonly ConcurrentDictionary<string, RateWindow> _rates = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, CmsRecipient> _recipients = new(StringComparer.Ordinal);
    private readonly ReleaseSignerCache _signers = new();

    public KeyReleaseService(ReleaseStore store, IListDirectory directory, ListKey releaseKey, KeyReleaseServiceOptions options,
        TimeProvider time, ILogger logger, IReleaseReceipts? receipts = null)
    {
        _receipts = receipts;
        _store = store;
        _directory = directory;
        _releaseKey = releaseKey;
        _keyId = KeyReleaseSealer.KeyId(releaseKey.Certificate.RawData);
        _options = options;
        _time = time;
        _logger = logger;
    }

    public ReleaseStore Store => _store;

    /// <summary>The (cached) directory the checks read: tests wait on it to see a changed list option.</summary>
    internal IListDirectory Directory => _directory;

    /// <summary>Counters for /metrics.</summary>
    public KeyServerCounters Counters { get; } = new();

    // ---- deposit ---------------------------------------------------------------------------------

    /// <summary>Checks and stores a milter's deposit (the caller has authenticated the milter).</summary>
    public DepositStatus Deposit(DepositRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        DepositStatus status = DepositCore(request);
        Counters.Deposit(status);
        return status;
    }

    private DepositStatus DepositCore(DepositRequest request)
    {
        if (request.MessageId.Length != KeyReleaseEntry.MessageIdLength || request.Binding.Length != KeyReleaseEntry.BindingLength
            || !request.KeyId.AsSpan().SequenceEqual(_keyId) || request.KeyRecipientInfo.Length is 0 or > 8192)
        {
            return DepositStatus.Invalid;
        }

        ReleasePolicy policy;
        try
        {
            policy = ReleasePolicy.Decode(request.Policy);
        }
        catch (CmsRewrapException)
        {
            return DepositStatus.Invalid;
        }

        if (!_directory.TryGetList(policy.List, out MailingList list) || !KeyReleaseListOptions.IsReleaseList(list)
            || (list.Mode == ListMode.Double) != (policy.Mode == ReleaseMode.Double)
            || (policy.Mode == ReleaseMode.Double) != (request.ListKeyId is { Length: > 0 }))
        {
            return DepositStatus.Forbidden;
        }

        byte[] material;
        try
        {
            material = KeyReleaseServerKey.UnwrapDeposit(request.KeyRecipientInfo, _releaseKey, request.KeyLength);
        }
        catch (CmsRewrapException)
        {
            return DepositStatus.Invalid;
        }

        try
        {
            if (!ReleaseBinding.Verify(material, request.Policy, request.MessageId, request.Binding))
            {
                return DepositStatus.Invalid;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(material);
        }

        ReleaseDeletePolicy delete = KeyReleaseListOptions.Delete(list);
        var record = new ReleaseRecord(Convert.ToHexStringLower(request.MessageId), list.Address, policy.Sender, (int)policy.Mode,
            request.Policy, request.Binding, request.KeyId, request.KeyRecipientInfo, request.KeyLength, request.ListKeyId,
            _time.GetUtcNow(), policy.NotAfter, null, null) { DeletePolicy = delete };

        // after-all: who is a member now (nested lists expanded, as check 4 reads it) is who must fetch before the key goes.
        string[]? entitled = delete == ReleaseDeletePolicy.AfterAll ? [.. _directory.Expand(list.Address).Members.Select(m => m.Address)] : null;
        DepositOutcome outcome = _store.Deposit(record, entitled);
        KeyServerLog.Deposited(_logger, record.MessageId, list.Address, outcome);
        return outcome switch
        {
            DepositOutcome.Stored => DepositStatus.Stored,
            DepositOutcome.AlreadyStored => DepositStatus.AlreadyStored,
            _ => DepositStatus.Conflict,
        };
    }

    // ---- release ---------------------------------------------------------------------------------

    /// <summary>Answers one signed release request (docs/key-release.md §4.2, checks 1-9) and writes its audit row; the
    /// task completes once the audit row (and the nonce and fetch of a release) are committed.</summary>
    public Task<ReleaseOutcome> ReleaseAsync(ReadOnlyMemory<byte> signedRequest, string client)
    {
        DateTimeOffset now = _time.GetUtcNow();
        ReleaseRequest request;
        X509Certificate2 signer;
        bool cachedSigner;
        try
        {
            (request, signer, cachedSigner) = ReleaseRequest.Verify(signedRequest, _signers);
        }
        catch (Exception e) when (e is FormatException or CryptographicException)
        {
            return FinishAsync(ReleaseOutcome.Refused("signature"), "-", "-", client, now);
        }

        string messageId = Convert.ToHexStringLower(request.MessageId);
        ReleaseOutcome outcome;
        try
        {
            outcome = Check(request, signer, messageId, client, now, cachedSigner);
        }
        finally
        {
            if (!cachedSigner)
            {
                signer.Dispose();
            }
        }

        return FinishAsync(outcome, messageId, request.Member, client, now, request);
    }

    private ReleaseOutcome Check(ReleaseRequest request, X509Certificate2 signer, string messageId, string client, DateTimeOffset now, bool cachedSigner)
    {
        if ((request.Time - now).Duration() > _options.ReplayWindow)
        {
            return ReleaseOutcome.Refused("time");
        }

        (ReleaseRecord? record, bool revokedForMember) = _store.GetForRelease(messageId, request.Member);
        if (record is null)
        {
            return ReleaseOutcome.Refused("unknown-message");
        }

        // The member now: still in the list (nested lists expanded), and this exact certificate is the one the
        // directory would encrypt to today.
        ExpandedMember? member = null;
        try
        {
            member = _directory.Expand(record.List).Members.FirstOrDefault(m => EmailAddress.Comparer.Equals(m.Address, request.Member));
        }
        catch (DirectoryException e) when (e.Reason == DirectoryError.UnknownList)
        {
            return ReleaseOutcome.Refused("membership");
        }

        if (member is null)
        {
            return ReleaseOutcome.Refused("membership");
        }

        if (member.Status != CertificateStatus.Usable || member.Certificate is not { } current || !current.RawDataMemory.Span.SequenceEqual(signer.RawDataMemory.Span))
        {
            return ReleaseOutcome.Refused("certificate");
        }

        if (!cachedSigner)
        {
            // The member's current certificate: its next request is verified without parsing it again.
            _signers.Remember(signer);
        }

        // Counted only for a proven member: forged requests in a member's name cannot use up that member's allowance.
        if (!TakeRate(request.Member, now))
        {
            return ReleaseOutcome.Refused("rate-limit");
        }

        if (record.RevokedAt is not null || revokedForMember)
        {
            return ReleaseOutcome.Refused("revoked");
        }

        if (now > record.NotAfter)
        {
            return ReleaseOutcome.Refused("expired");
        }

        if (record.KeyRecipientInfo is not { } deposit)
        {
            return ReleaseOutcome.Refused("deleted");
        }

        byte[] material;
        try
        {
            material = KeyReleaseServerKey.UnwrapDeposit(deposit, _releaseKey, record.KeyLength);
        }
        catch (CmsRewrapException)
        {
            return ReleaseOutcome.Refused("deposit");
        }

        try
        {
            // Both the stored binding and the member's copy must be the one the key material gives for the stored policy.
            if (!CryptographicOperations.FixedTimeEquals(request.Binding, record.Binding)
                || !ReleaseBinding.Verify(material, record.Policy, request.MessageId, record.Binding))
            {
                return ReleaseOutcome.Refused("binding");
            }

            CmsRecipient recipient = Recipient(current, member.UseOaep);
            byte[] ri = KeyReleaseServerKey.WrapForMember(recipient, material, record.ListKeyId);
            return new ReleaseOutcome(true, ri, false, "released") { Record = record };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(material);
        }
    }

    /// <summary>The audit row, the nonce and the fetch record in one transaction; a replayed nonce turns a release
    /// into a refusal (the store records the audit row as such) before anything leaves.</summary>
    private async Task<ReleaseOutcome> FinishAsync(ReleaseOutcome outcome, string messageId, string member, string client, DateTimeOffset now, ReleaseRequest? request = null)
    {
        ReleaseOutcome result = outcome;
        if (request is null)
        {
            await _store.AuditAsync(new ReleaseAuditRow(messageId, member, now, client, "refused", outcome.Reason)).ConfigureAwait(false);
        }
        else
        {
            var audit = new ReleaseAuditRow(messageId, member, now, client, outcome.Released ? "released" : "refused", outcome.Reason);
            (bool fresh, bool first) = await _store.CommitReleaseAsync(Convert.ToHexStringLower(request.Nonce), now + (2 * _options.ReplayWindow), audit, outcome.Released)
                .ConfigureAwait(false);
            if (!fresh)
            {
                result = ReleaseOutcome.Refused("replay");
            }
            else if (outcome.Released)
            {
                result = outcome with { FirstRelease = first };
                if (first)
                {
                    QueueReceipt(outcome.Record!, request.Member, now);
                }
            }
        }

        Counters.Release(result);
        if (result.Released)
        {
            KeyServerLog.Released(_logger, messageId, member, client, result.FirstRelease);
        }
        else
        {
            KeyServerLog.Refused(_logger, messageId, member, client, result.Reason);
        }

        return result;
    }

    /// <summary>The list's receipt for a first release (docs/key-release.md §7), handed to the mailer's queue.</summary>
    private void QueueReceipt(ReleaseRecord record, string member, DateTimeOffset now)
    {
        if (_receipts is not null && _directory.TryGetList(record.List, out MailingList list)
            && ReleaseReceipt.RecipientFor(list, record.Sender) is { } recipient)
        {
            _receipts.Enqueue(new ReleaseReceipt(record.MessageId, list.Address, member, now, recipient));
        }
    }

    private CmsRecipient Recipient(X509Certificate2 certificate, bool useOaep)
    {
        // Importing a public key costs more than using it (docs/cms.md §11): one per certificate and transport.
        string key = certificate.GetCertHashString(HashAlgorithmName.SHA256) + (useOaep ? "/oaep" : "/v15");
        return _recipients.GetOrAdd(key, _ => CmsRecipient.FromCertificate(certificate, useOaep));
    }

    private bool TakeRate(string member, DateTimeOffset now)
    {
        long minute = now.ToUnixTimeSeconds() / 60;
        RateWindow window = _rates.AddOrUpdate(EmailAddress.Normalize(member),
            _ => new RateWindow(minute, 1),
            (_, w) => w.Minute == minute ? w with { Count = w.Count + 1 } : new RateWindow(minute, 1));
        if (_rates.Count > 100_000)
        {
            foreach (KeyValuePair<string, RateWindow> stale in _rates.Where(kv => kv.Value.Minute != minute))
            {
                _rates.TryRemove(stale);
            }
        }

        return window.Count <= _options.RateLimitPerMinute;
    }

    private sealed record RateWindow(long Minute, int Count);
}
