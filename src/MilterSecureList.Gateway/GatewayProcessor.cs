using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Gateway;

/// <summary>
/// The gateway's business rule, protocol-independent (docs/gateway.md): the milter handler and
/// <c>securelist gateway check</c> run this same code. Outbound mail from a gateway user is signed with the user's
/// key and encrypted to every recipient; inbound mail to gateway users is verified (tampered or forged mail is
/// refused) and decrypted. Decisions on recipients happen at RCPT, so refusals name the recipient and the sending
/// MTA can retry the others separately.
/// </summary>
public sealed class GatewayProcessor
{
    private const string AuthenticationResults = "Authentication-Results";

    /// <summary>Put on a key-release post the key server refused to release for a user (docs/gateway.md).</summary>
    public const string ReleaseRefusedHeader = "X-SecureList-Release-Refused";

    private readonly IGatewayDirectory _directory;
    private volatile SmimeVerifier _verifier;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IGatewayNotifier? _notifier;
    private readonly CertificateCache _certificates = new();

    /// <summary>Users' private keys prepared for decryption, by key object (the directory keeps one per key file).</summary>
    private readonly ConditionalWeakTable<AsymmetricAlgorithm, ListKey> _decryptionKeys = new();

    public GatewayProcessor(IGatewayDirectory directory, GatewayOptions options, TrustAnchors anchors, TimeProvider time, ILogger logger, IGatewayNotifier? notifier = null)
    {
        _notifier = notifier;
        _directory = directory;
        Options = options;
        _verifier = new SmimeVerifier(anchors, time, _certificates);
        _time = time;
        _logger = logger;
    }

    /// <summary>Fetches the keys of key-release posts for users; null: such posts stay encrypted (docs/gateway.md).</summary>
    public IKeyReleaseFetcher? KeyRelease { get; init; }

    /// <summary>The [Gateway] settings; replaced as a whole on reload (each message reads it once per decision).</summary>
    public GatewayOptions Options { get; set; }

    /// <summary>SIGHUP: new trust anchors for signatures checked from now on. The caller keeps the old anchors
    /// alive until no message can still be using them (the daemon disposes them when it stops).</summary>
    public void UseTrustAnchors(TrustAnchors anchors) => _verifier = new SmimeVerifier(anchors, _time, _certificates);

    // ---- envelope ---------------------------------------------------------------------------

    /// <summary>MAIL FROM: a gateway user with a certificate makes the transaction outbound.</summary>
    public GatewayTransaction Begin(string sender)
    {
        string address = Bare(sender);
        GatewayUser? user = address.Length == 0 ? null : _directory.FindUser(address);
        ParsedCertificate? certificate = user?.CertificateDer is { } der ? _certificates.Get(der) : null;
        if (certificate is not null && !certificate.IsUsableAt(_time.GetUtcNow()))
        {
            // An expired user certificate: the gateway cannot sign; treat the sender as an ordinary one.
            return new GatewayTransaction(address, null, null);
        }

        return new GatewayTransaction(address, user, certificate?.Certificate);
    }

    /// <summary>Whether <see cref="Begin"/> (TRANSACTION null) or <see cref="CheckRecipient"/> for ADDRESS answers from
    /// memory now (no database read): the milter handler then answers on the thread that read the command.</summary>
    public bool AnswersFromMemory(GatewayTransaction? transaction, string address) =>
        _directory.AnswersFromMemory(Bare(address), certificate: transaction?.SenderUser is not null);

    /// <summary>RCPT TO: null accepts the recipient (and records it); a reply refuses only this recipient.</summary>
    public GatewayReply? CheckRecipient(GatewayTransaction transaction, string recipient)
    {
        string address = Bare(recipient);
        GatewayReply? refusal = transaction.SenderUser is not null
            ? CheckOutboundRecipient(transaction, address)
            : CheckInboundRecipient(transaction, address);
        if (refusal is null)
        {
            transaction.Recipients.Add(address);
        }

        return refusal;
    }

    private GatewayReply? CheckOutboundRecipient(GatewayTransaction transaction, string address)
    {
        (EncryptPolicy encrypt, SignPolicy sign) = Options.PolicyFor(transaction.SenderUser, address);
        DateTimeOffset now = _time.GetUtcNow();
        ParsedCertificate? certificate = null;
        SmimeCapabilities? capabilities = null;

        // A local gateway user reads mail through this server: encrypting to them would hide it from their webmail.
        bool local = _directory.FindUser(address) is not null;
        if (!local && encrypt != EncryptPolicy.Never && _directory.FindCertificate(address, now) is { } found)
        {
            ParsedCertificate candidate = _certificates.Get(found.Der);
            if (candidate.IsUsableAt(now))
            {
                certificate = candidate;
                capabilities = found.Capabilities is { } caps ? SmimeCapabilities.TryDecode(caps) : null;
            }
        }

        if (encrypt == EncryptPolicy.Required && certificate is null)
        {
            return new GatewayReply(550, "5.7.1", $"<{address}>: encryption to this recipient is required and the gateway has no usable S/MIME certificate for it; ask the recipient for a certificate (the other recipients are not affected)");
        }

        bool plain = certificate is null;
        if (plain && transaction.HasRequired || encrypt == EncryptPolicy.Required && transaction.HasPlain)
        {
            return new GatewayReply(452, "4.5.3", $"<{address}>: this recipient needs a differently protected copy; send it in a separate transaction");
        }

        transaction.HasRequired |= encrypt == EncryptPolicy.Required;
        transaction.HasPlain |= plain;
        transaction.WantsSignature |= sign == SignPolicy.Always;
        if (certificate is not null)
        {
            transaction.EncryptTo[address] = (certificate, capabilities);
        }

        return null;
    }

    private GatewayReply? CheckInboundRecipient(GatewayTransaction transaction, string address)
    {
        bool user = _directory.FindUser(address) is not null;
        transaction.ToGatewayUsers ??= user;
        return transaction.ToGatewayUsers == user
            ? null
            : new GatewayReply(452, "4.5.3", $"<{address}>: too many recipients for this message; send it to this recipient in a separate transaction");
    }

    // ---- end of message -----------------------------------------------------------------------

    /// <summary>End of message: the verdict and modifications for HEADERS and BODY (CRLF or LF line ends).</summary>
    public GatewayResult Process(GatewayTransaction transaction, IReadOnlyList<GatewayHeader> headers, ReadOnlyMemory<byte> body, string queueId)
    {
        byte[] canonicalBody = MessageText.CrlfArray(body);
        try
        {
            return transaction.Direction switch
            {
                GatewayDirection.Outbound => Outbound(transaction, headers, canonicalBody, queueId),
                GatewayDirection.Inbound => Inbound(transaction, headers, canonicalBody, queueId),
                _ => GatewayResult.Pass("no gateway user in the envelope"),
            };
        }
        catch (GatewayException e)
        {
            return GatewayResult.Reject("5.6.0", $"malformed S/MIME message: {e.Message}", e.Message);
        }
    }

    private GatewayResult Outbound(GatewayTransaction transaction, IReadOnlyList<GatewayHeader> headers, byte[] body, string queueId)
    {
        if (SmimeForm.Of(headers).Kind != SmimeKind.None)
        {
            return GatewayResult.Pass("already signed or encrypted by the sender: untouched");
        }

        bool sign = transaction.WantsSignature;
        bool encrypt = transaction.WillEncrypt;
        if (!sign && !encrypt)
        {
            return GatewayResult.Pass("policy: neither signing nor encryption for these recipients");
        }

        GatewayUser user = transaction.SenderUser!;
        X509Certificate2 certificate = transaction.SenderCertificate!;
        string messageId = MessageId(headers);
        var content = new MimeEntityBytes(headers.Where(IsContentHeader).ToList(), body);
        AsymmetricAlgorithm? key = sign ? _directory.GetPrivateKey(user, certificate) : null;
        bool opaque = user.Opaque ?? Options.Opaque;
        List<CmsRecipient> recipients = [];
        bool gcm = false;
        if (encrypt)
        {
            var all = transaction.EncryptTo.Values.ToList();
            // Stronger algorithms only when every recipient announced them; otherwise what every client reads.
            gcm = all.All(r => r.Capabilities?.Supports(SmimeCapabilities.Aes256Gcm) == true);
            // OAEP is decided over the RSA recipients only: EC recipients get ECDH key agreement whatever they announce.
            bool oaep = all.Where(r => !IsEc(r.Certificate.Certificate)).All(r => r.Capabilities?.Supports(SmimeCapabilities.RsaesOaep) == true);
            recipients = all.Select(r => r.Certificate.Recipient(oaep)).ToList();
        }

        MimeEntityBytes entity;
        if (key is not null && !opaque && encrypt && !gcm && SmimeSigner.AlreadyCanonical(content) is { } canonicalHeaders)
        {
            // The usual case, in one pass over pooled buffers.
            entity = SmimeSigner.SignedAndEnveloped(canonicalHeaders, body, certificate, key, user.Chain, _time.GetUtcNow(), recipients);
        }
        else
        {
            byte[] canonical = SmimeSigner.Canonicalize(content);
            if (key is null)
            {
                entity = MimeEntityBytes.Parse(canonical);
            }
            else
            {
                byte[] signedData = SmimeSigner.CreateSignedData(canonical, certificate, key, user.Chain, _time.GetUtcNow(), detached: !opaque);
                entity = opaque ? SmimeSigner.Pkcs7Mime(signedData, "signed-data") : SmimeSigner.MultipartSigned(canonical, signedData);
            }

            if (encrypt)
            {
                byte[] enveloped = CmsEncryptor.Encrypt(entity.ToBytes(), recipients, gcm);
                entity = SmimeSigner.Pkcs7Mime(enveloped, gcm ? "authEnveloped-data" : "enveloped-data");
            }
        }

        var done = new List<string>();
        if (sign)
        {
            GatewayLog.Signed(_logger, queueId, user.Address, messageId, opaque ? "opaque" : "multipart/signed");
            done.Add(opaque ? "signed (opaque)" : "signed (multipart/signed)");
        }

        if (encrypt)
        {
            var transports = recipients.Select(r => r.KeyTransport).Distinct().Order().ToList();
            string logged = string.Join('+', transports.Select(t => t switch { CmsKeyTransport.RsaOaepSha256 => "rsaes-oaep", CmsKeyTransport.EcdhStdSha256Aes256Wrap => "ecdh-es", _ => "rsa-pkcs1v1.5" }));
            GatewayLog.Encrypted(_logger, queueId, user.Address, messageId, recipients.Count, gcm ? "aes256-gcm" : "aes256-cbc", logged);
            done.Add($"encrypted to {recipients.Count} recipient(s) ({(gcm ? "AES-256-GCM" : "AES-256-CBC")}, " +
                $"{string.Join(" + ", transports.Select(t => t switch { CmsKeyTransport.RsaOaepSha256 => "RSAES-OAEP", CmsKeyTransport.EcdhStdSha256Aes256Wrap => "ECDH", _ => "RSA PKCS#1 v1.5" }))})");
        }

        GatewayResult result = GatewayResult.Pass(string.Join(", ", done));
        ReplaceContent(result, headers, entity);
        return result;
    }

    private GatewayResult Inbound(GatewayTransaction transaction, IReadOnlyList<GatewayHeader> headers, byte[] body, string queueId)
    {
        string messageId = MessageId(headers);
        string? from = SingleFrom(headers);
        SmimeForm form = SmimeForm.Of(headers);
        GatewayResult result;
        string? authenticationResult = null;
        switch (form.Kind)
        {
            case SmimeKind.MultipartSigned:
                (ReadOnlyMemory<byte> signed, ReadOnlyMemory<byte> signaturePart) = MultipartSignedBody.Split(body, form.Boundary!);
                SignatureCheck check = _verifier.VerifyDetached(signed, DecodeBase64Entity(signaturePart.Span), from);
                if (Judge(transaction, check, from, queueId, messageId, out authenticationResult) is { } refused)
                {
                    return refused;
                }

                result = GatewayResult.Pass(check.Valid ? $"signature by {from} verified" : $"signature failed, delivered with a warning: {check.Problem}");
                break;
            case SmimeKind.Pkcs7Mime:
                using (PooledPlaintext cms = DecodeBase64BodyPooled(headers, body))
                {
                    return InboundPkcs7(transaction, headers, cms.Memory, from, queueId, messageId);
                }

            default:
                result = GatewayResult.Pass("not S/MIME signed or encrypted");
                break;
        }

        RemoveForeignResults(result, headers, authenticationResult);
        return result;
    }

    private GatewayResult InboundPkcs7(GatewayTransaction transaction, IReadOnlyList<GatewayHeader> headers, ReadOnlyMemory<byte> cms, string? from, string queueId, string messageId)
    {
        CmsEnvelopeInfo? envelope = null;
        try
        {
            envelope = SessionKeyRewrapper.Inspect(cms);
        }
        catch (CmsRewrapException)
        {
            // Not EnvelopedData: SignedData (opaque signature) is tried below.
        }

        if (envelope is not { IsEncrypted: true })
        {
            SignatureCheck check = _verifier.VerifyOpaque(cms, from);
            if (Judge(transaction, check, from, queueId, messageId, out string? opaqueResult) is { } refused)
            {
                return refused;
            }

            GatewayResult opaque = GatewayResult.Pass(check.Valid ? $"opaque signature by {from} verified and unwrapped" : $"signature failed, delivered with a warning: {check.Problem}");
            if (check.Valid)
            {
                ReplaceContent(opaque, headers, MimeEntityBytes.Parse(MessageText.ToCrlf(check.EncapsulatedContent)));
            }

            RemoveForeignResults(opaque, headers, opaqueResult);
            return opaque;
        }

        // One body for all: decrypt only when every recipient is a gateway user this message is encrypted to.
        var readers = new List<(GatewayUser User, X509Certificate2 Certificate)>();
        string? notAddressed = null;
        foreach (string recipient in transaction.Recipients)
        {
            GatewayUser? user = _directory.FindUser(recipient);
            X509Certificate2? certificate = user?.CertificateDer is { } der ? _certificates.Get(der).Certificate : null;
            if (user is null || certificate is null)
            {
                return LeftEncrypted(headers, queueId, messageId, $"not encrypted to {recipient}'s certificate");
            }

            readers.Add((user, certificate));
            if (notAddressed is null && !envelope.Recipients.Any(r => r.Names(certificate)))
            {
                notAddressed = recipient;
            }
        }

        string? released = null;
        if (notAddressed is not null)
        {
            if (!envelope.Recipients.Any(r => r.Kind == RecipientInfoKind.Other && r.OriType == Oids.KeyReleaseOri))
            {
                return LeftEncrypted(headers, queueId, messageId, $"not encrypted to {notAddressed}'s certificate");
            }

            (byte[]? withKey, GatewayResult? stop) = FetchReleasedKey(readers, headers, cms, queueId, messageId);
            if (stop is not null)
            {
                return stop;
            }

            cms = withKey!;
            released = "key released by the key server";
        }

        (GatewayUser reader, X509Certificate2 readerCertificate) = readers[0];
        PooledPlaintext plain;
        try
        {
            // Into a pooled buffer, zeroed when it goes back: the entity parsed from it is the only new copy.
            plain = CmsDecryptor.DecryptPooled(cms, DecryptionKey(reader, readerCertificate));
        }
        catch (CmsRewrapException e)
        {
            // Every decryption failure looks the same from outside: the message stays as it came (no oracle).
            return LeftEncrypted(headers, queueId, messageId, $"cannot decrypt: {e.Message}");
        }

        GatewayLog.Decrypted(_logger, queueId, reader.Address, messageId);
        MimeEntityBytes inner;
        using (plain)
        {
            if (MessageText.IsCrlf(plain.Span))
            {
                inner = MimeEntityBytes.Parse(plain.Span);
            }
            else
            {
                byte[] crlf = MessageText.ToCrlf(plain.Span);
                try
                {
                    inner = MimeEntityBytes.Parse(crlf);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(crlf);
                }
            }
        }

        string? innerResult = null;
        var notes = new List<string> { $"decrypted for {string.Join(", ", readers.Select(r => r.User.Address))}" };
        if (released is not null)
        {
            notes.Insert(0, released);
        }

        SmimeForm innerForm = SmimeForm.Of(inner.Headers);
        if (innerForm.Kind == SmimeKind.MultipartSigned)
        {
            (ReadOnlyMemory<byte> signed, ReadOnlyMemory<byte> signaturePart) = MultipartSignedBody.Split(inner.Body, innerForm.Boundary!);
            SignatureCheck check = _verifier.VerifyDetached(signed, DecodeBase64Entity(signaturePart.Span), from);
            if (Judge(transaction, check, from, queueId, messageId, out innerResult) is { } refused)
            {
                return refused;
            }

            notes.Add(check.Valid ? $"signature by {from} verified" : $"signature failed: {check.Problem}");
        }
        else if (innerForm.Kind == SmimeKind.Pkcs7Mime && innerForm.SmimeType == "signed-data")
        {
            SignatureCheck check = _verifier.VerifyOpaque(DecodeBase64Entity(inner.ToBytes()), from);
            if (Judge(transaction, check, from, queueId, messageId, out innerResult) is { } refused)
            {
                return refused;
            }

            if (check.Valid)
            {
                inner = MimeEntityBytes.Parse(MessageText.ToCrlf(check.EncapsulatedContent));
            }

            notes.Add(check.Valid ? $"opaque signature by {from} verified and unwrapped" : $"signature failed: {check.Problem}");
        }

        GatewayResult result = GatewayResult.Pass(string.Join(", ", notes));
        ReplaceContent(result, headers, inner);
        RemoveForeignResults(result, headers, innerResult);
        return result;
    }

    /// <summary>The reader's key as the CMS layer decrypts with it, prepared once per key and certificate.</summary>
    private ListKey DecryptionKey(GatewayUser user, X509Certificate2 certificate)
    {
        AsymmetricAlgorithm key = _directory.GetPrivateKey(user, certificate);
        if (!_decryptionKeys.TryGetValue(key, out ListKey? prepared) || !prepared.Certificate.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span))
        {
            prepared = new ListKey(certificate, key, ownsKey: false);
            _decryptionKeys.AddOrUpdate(key, prepared);
        }

        return prepared;
    }

    /// <summary>
    /// A key-release post (docs/key-release.md §2) to gateway users: every recipient's key is asked for, each request
    /// signed with that user's own key, so the key server checks each one's membership now and records each release.
    /// Only when all are released is the first answer put into the message (the body is one for all). A key server
    /// that cannot be asked tempfails the message (Postfix retries); a refusal leaves it encrypted with a header
    /// saying so. Returns the post with the user's RecipientInfo, or the result to stop with.
    /// </summary>
    private (byte[]? Cms, GatewayResult? Stop) FetchReleasedKey(List<(GatewayUser User, X509Certificate2 Certificate)> readers, IReadOnlyList<GatewayHeader> headers, ReadOnlyMemory<byte> cms, string queueId, string messageId)
    {
        KeyReleaseEntry? entry;
        try
        {
            entry = KeyReleaseReader.Find(cms);
        }
        catch (CmsRewrapException e)
        {
            return (null, LeftEncrypted(headers, queueId, messageId, $"malformed key-release entry: {e.Message}"));
        }

        // The URL is the sender's choice: only the operator's key servers are ever contacted.
        if (entry is null || KeyRelease is not { } fetcher || !Options.FetchesFrom(entry.KeyServer))
        {
            return (null, LeftEncrypted(headers, queueId, messageId, $"key-release post of a key server the gateway does not fetch from ({MessageText.Printable(entry?.KeyServer ?? "none")}; see [Gateway] KeyServers)"));
        }

        byte[]? recipientInfo = null;
        foreach ((GatewayUser user, X509Certificate2 certificate) in readers)
        {
            KeyReleaseAnswer answer = fetcher.Fetch(entry, user.Address, certificate, _directory.GetPrivateKey(user, certificate));
            if (answer.Outcome == KeyReleaseOutcome.Unavailable)
            {
                GatewayLog.ReleaseUnavailable(_logger, queueId, messageId, entry.MessageIdHex, answer.Problem ?? "unavailable");
                return (null, GatewayResult.Tempfail("4.3.0", "the key server of this key-release post cannot be reached; try again later", $"key server unavailable: {answer.Problem}"));
            }

            if (answer.Outcome == KeyReleaseOutcome.Refused)
            {
                GatewayLog.ReleaseRefused(_logger, queueId, user.Address, messageId, entry.MessageIdHex);
                GatewayResult refused = LeftEncrypted(headers, queueId, messageId, $"the key server refused the key to release {entry.MessageIdHex} for {user.Address}");
                DeleteAll(refused, headers, ReleaseRefusedHeader);
                refused.PrependHeaders.Add(new GatewayHeader(ReleaseRefusedHeader,
                    $"{user.Address}; release={entry.MessageIdHex}; key-server={MessageText.Printable(entry.KeyServer)}; the key server refused the key (not a member of {MessageText.Printable(entry.Policy.List)} now, revoked or expired), the message stays encrypted"));
                return (null, refused);
            }

            GatewayLog.ReleaseFetched(_logger, queueId, user.Address, messageId, entry.MessageIdHex);
            recipientInfo ??= answer.RecipientInfo;
        }

        try
        {
            return (KeyReleaseReader.Insert(cms, recipientInfo!), null);
        }
        catch (CmsRewrapException e)
        {
            return (null, LeftEncrypted(headers, queueId, messageId, $"the key server's RecipientInfo does not fit the message: {e.Message}"));
        }
    }

    /// <summary>Deletes every occurrence of header NAME (an outsider may have put in one of ours).</summary>
    private static void DeleteAll(GatewayResult result, IReadOnlyList<GatewayHeader> headers, string name)
    {
        int count = headers.Count(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase));
        for (int i = count; i >= 1; i--)
        {
            result.DeleteHeaders.Add((name, i));
        }
    }

    private static bool IsEc(X509Certificate2 certificate) => certificate.GetKeyAlgorithm() == Oids.EcPublicKey;

    /// <summary>
    /// Turns a signature check into a refusal (or null to go on). Valid: audit line, harvest, and the
    /// Authentication-Results header is added later by the caller's result. Invalid: 550 or, by policy, a warning.
    /// </summary>
    private GatewayResult? Judge(GatewayTransaction transaction, SignatureCheck check, string? from, string queueId, string messageId, out string? authenticationResult)
    {
        authenticationResult = null;
        if (!check.Valid)
        {
            GatewayLog.SignatureRefused(_logger, queueId, messageId, check.Problem!);
            if (Options.InvalidSignature == InvalidSignatureAction.Reject)
            {
                return GatewayResult.Reject("5.7.1", $"S/MIME signature refused: {check.Problem}", check.Problem!);
            }

            authenticationResult = $"{Options.AuthservId}; smime=fail reason=\"{check.Problem!.Replace("\"", "'", StringComparison.Ordinal)}\"";
            return null;
        }

        // A valid check implies the certificate is issued to From (SmimeVerifier), so From names the signer.
        string signer = from!;
        GatewayLog.Verified(_logger, queueId, signer, messageId);
        authenticationResult = $"{Options.AuthservId}; smime=pass body.smime-identifier={signer}";
        if (Options.Harvest)
        {
            Harvest(transaction, signer, check);
        }

        return null;
    }

    private void Harvest(GatewayTransaction transaction, string address, SignatureCheck check)
    {
        HarvestOutcome outcome = _directory.Harvest(address, check.Signer!, check.Capabilities);
        string fingerprint = CertificateInspector.Sha256Fingerprint(check.Signer!);
        if (outcome == HarvestOutcome.PendingAcceptance)
        {
            GatewayLog.PinConflict(_logger, address, fingerprint);
            string? pinned = _directory.FindCertificate(address, _time.GetUtcNow())?.Fingerprint;
            // Inbound transactions hold gateway users only (the others were sent away with 452 at RCPT).
            foreach (string user in transaction.Recipients)
            {
                _notifier?.CertificateChangePending(new PendingCertificateChange(user, address, fingerprint, pinned));
            }
        }
        else if (outcome == HarvestOutcome.Added)
        {
            GatewayLog.Harvested(_logger, address, fingerprint);
        }
    }

    /// <summary>Removes every Authentication-Results header claiming our authserv-id (RFC 8601 §5) and adds ours.</summary>
    private void RemoveForeignResults(GatewayResult result, IReadOnlyList<GatewayHeader> headers, string? ours = null)
    {
        int occurrence = 0;
        var foreign = new List<int>();
        foreach (GatewayHeader header in headers)
        {
            if (!string.Equals(header.Name, AuthenticationResults, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            occurrence++;
            string value = MessageText.Unfold(header.Value);
            int semicolon = value.IndexOf(';', StringComparison.Ordinal);
            string id = (semicolon < 0 ? value : value[..semicolon]).Trim();
            int space = id.IndexOfAny([' ', '\t']);
            if (string.Equals(space < 0 ? id : id[..space], Options.AuthservId, StringComparison.OrdinalIgnoreCase))
            {
                foreign.Add(occurrence);
            }
        }

        foreach (int index in foreign.OrderByDescending(i => i))
        {
            result.DeleteHeaders.Add((AuthenticationResults, index));
        }

        if (ours is not null)
        {
            result.PrependHeaders.Add(new GatewayHeader(AuthenticationResults, ours));
        }
    }

    private GatewayResult LeftEncrypted(IReadOnlyList<GatewayHeader> headers, string queueId, string messageId, string reason)
    {
        GatewayLog.LeftEncrypted(_logger, queueId, messageId, reason);
        GatewayResult result = GatewayResult.Pass($"left encrypted: {reason}");
        RemoveForeignResults(result, headers);
        return result;
    }

    /// <summary>The new entity's Content-* headers replace the message's; MIME-Version is added when missing.</summary>
    private static void ReplaceContent(GatewayResult result, IReadOnlyList<GatewayHeader> headers, MimeEntityBytes entity)
    {
        var counts = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (GatewayHeader header in headers.Where(IsContentHeader))
        {
            counts[header.Name] = counts.GetValueOrDefault(header.Name) + 1;
        }

        foreach ((string name, int count) in counts)
        {
            for (int i = count; i >= 1; i--)
            {
                result.DeleteHeaders.Add((name, i));
            }
        }

        if (!headers.Any(h => string.Equals(h.Name, "MIME-Version", StringComparison.OrdinalIgnoreCase)))
        {
            result.AddHeaders.Add(new GatewayHeader("MIME-Version", "1.0"));
        }

        result.AddHeaders.AddRange(entity.Headers.Where(IsContentHeader));
        result.NewBody = entity.Body;
    }

    private static bool IsContentHeader(GatewayHeader header) => header.Name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase);

    /// <summary>The DER inside a base64 (or binary) MIME entity given as bytes.</summary>
    private static byte[] DecodeBase64Entity(ReadOnlySpan<byte> entityBytes)
    {
        MimeEntityBytes entity = MimeEntityBytes.Parse(entityBytes);
        return DecodeBase64Body(entity.Headers, entity.Body);
    }

    /// <summary>The DER in BODY, base64 when the last Content-Transfer-Encoding of HEADERS says so.</summary>
    private static byte[] DecodeBase64Body(IReadOnlyList<GatewayHeader> headers, byte[] body) =>
        IsBase64(headers)
            ? MessageText.FromBase64Lines(body) ?? throw new GatewayException("the S/MIME part is not valid base64")
            : body;

    /// <summary>The same in a pooled buffer (the message-sized CMS of every inbound message).</summary>
    private static PooledPlaintext DecodeBase64BodyPooled(IReadOnlyList<GatewayHeader> headers, byte[] body)
    {
        if (IsBase64(headers))
        {
            return MessageText.FromBase64LinesPooled(body) ?? throw new GatewayException("the S/MIME part is not valid base64");
        }

        return PooledPlaintext.CopyOf(body);
    }

    private static bool IsBase64(IReadOnlyList<GatewayHeader> headers) =>
        MessageText.Unfold(headers.LastOrDefault(h => string.Equals(h.Name, "Content-Transfer-Encoding", StringComparison.OrdinalIgnoreCase))?.Value ?? "7bit")
            .Equals("base64", StringComparison.OrdinalIgnoreCase);

    private static string MessageId(IReadOnlyList<GatewayHeader> headers) =>
        headers.FirstOrDefault(h => string.Equals(h.Name, "Message-ID", StringComparison.OrdinalIgnoreCase)) is { } id ? MessageText.Unfold(id.Value) : "(none)";

    /// <summary>The one mailbox of From, or null when there is none or several.</summary>
    private static string? SingleFrom(IReadOnlyList<GatewayHeader> headers)
    {
        var from = headers.Where(h => string.Equals(h.Name, "From", StringComparison.OrdinalIgnoreCase)).ToList();
        if (from.Count != 1 || !MimeKit.InternetAddressList.TryParse(MessageText.Unfold(from[0].Value), out MimeKit.InternetAddressList? list))
        {
            return null;
        }

        var mailboxes = list.Mailboxes.ToList();
        return mailboxes.Count == 1 ? mailboxes[0].Address : null;
    }

    private static string Bare(string address) => address.Trim().TrimStart('<').TrimEnd('>').Trim();
}
