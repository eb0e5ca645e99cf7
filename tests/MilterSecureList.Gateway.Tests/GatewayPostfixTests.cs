using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Testing;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// Through a real Postfix (smtpd → securelist-milter with Handlers = gateway → smtp-sink): what leaves for a
/// correspondent is encrypted and signed (read by openssl), a recipient without a certificate under
/// <c>required</c> is refused at RCPT while the other still gets the mail, and tampered inbound mail is refused 550.
/// </summary>
public sealed class GatewayPostfixTests : IDisposable
{
    private static readonly TimeSpan s_delivery = TimeSpan.FromSeconds(60);
    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    private Task<DaemonProcess> StartDaemonAsync(string handlers = "gateway", string extra = "") => DaemonProcess.StartAsync(_world.DaemonIni(handlers, extra));

    /// <summary>
    /// The sending side: a second Postfix without milters that relays everything to GATEWAY's smtpd, so a
    /// recipient the gateway answers with 452 is retried by a real SMTP client in a separate transaction, and a
    /// 550 becomes a bounce to the sender.
    /// </summary>
    private static Task<PostfixInstance> StartSenderAsync(PostfixInstance gateway) =>
        PostfixInstance.StartAsync(null, ["myhostname = sender.msl.test", $"relayhost = [127.0.0.1]:{gateway.SmtpPort}"]);

    /// <summary>
    /// Waits (bounded) until SENDER's queue is empty and GATEWAY's sink holds COUNT messages. The sender is asked
    /// to retry deferred recipients now (postqueue -f) instead of on its backoff schedule.
    /// </summary>
    private static async Task<IReadOnlyList<SinkMessage>> DeliveredAsync(PostfixInstance sender, PostfixInstance gateway, int count)
    {
        await Poll.UntilAsync(
            async () =>
            {
                if (sender.QueuedCount() == 0 && gateway.ReadSinkMessages().Count >= count)
                {
                    return true;
                }

                await sender.FlushQueueAsync();
                return false;
            },
            $"the sender's queue to empty and {count} message(s) at the gateway's sink",
            s_delivery,
            TimeSpan.FromMilliseconds(500), // each try runs postqueue -f; pacing, not a wait for anything in particular
            () => $"{sender.QueuedCount()} still queued at the sender, {gateway.ReadSinkMessages().Count} of {count} delivered; sender log:\n{sender.ReadMailLog()}");

        return await gateway.WaitForSinkMessagesAsync(count, s_delivery);
    }

    private string DecryptAndVerify(SinkMessage copy, Party party) =>
        _world.DecryptAndVerify(Encoding.ASCII.GetBytes(copy.Headers + "\n" + copy.Body), party);

    [Fact]
    public async Task OutboundUnderRequiredNothingLeavesInPlaintextAndTheMissingRecipientIsRefusedAtRcpt()
    {
        _world.Know(_world.Bob);
        _world.Store.SetUserPolicy("alice@gw.example", EncryptPolicy.Required, null, null);
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);

        string data = _world.Write(GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example", "the secret plan"));
        (int _, string stdout, string _) = await postfix.SwaksAsync("--from", "alice@gw.example", "--to", "bob@partner.example,stranger@nowhere.example", "--data", data);
        Assert.Contains("550 5.7.1 <stranger@nowhere.example>", stdout, StringComparison.Ordinal);

        SinkMessage delivered = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Equal(["<bob@partner.example>"], delivered.Recipients);
        Assert.DoesNotContain("secret plan", delivered.Headers + delivered.Body, StringComparison.Ordinal);
        Assert.Contains("the secret plan", DecryptAndVerify(delivered, _world.Bob), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InboundTamperedMailIsRefusedAndGoodMailIsDeliveredWithAuthenticationResults()
    {
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);
        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nPay 100 EUR to account 1\r\n"));
        byte[] signed = _world.OpensslMessage("From: bob@partner.example\r\nTo: alice@gw.example\r\nSubject: invoice\r\nAuthentication-Results: gw.example; smime=pass body.smime-identifier=forged@evil.example\r\n",
            "cms", "-sign", "-in", entity, "-signer", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile);
        byte[] tampered = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(signed).Replace("account 1", "account 9", StringComparison.Ordinal));

        SmtpResult refused = await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], tampered);
        Assert.Equal(550, refused.Code);
        Assert.Contains("5.7.1 S/MIME signature refused", refused.Text, StringComparison.Ordinal);

        SmtpResult accepted = await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], signed);
        Assert.Equal(250, accepted.Code);
        SinkMessage delivered = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Contains("Authentication-Results: gw.example; smime=pass body.smime-identifier=bob@partner.example", delivered.Headers, StringComparison.Ordinal);
        Assert.DoesNotContain("forged@evil.example", delivered.Headers, StringComparison.Ordinal);
        Assert.Contains("account 1", delivered.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnderRequiredNoCopyLeavesInPlaintextWhenARealMtaSendsToMixedRecipients()
    {
        // alice requires encryption; bob and carol have certificates, stranger has none (550), and loose@plain.example
        // is opportunistic by domain policy and has none (452: it needs a differently protected copy).
        _world.Know(_world.Bob);
        _world.Know(_world.Carol);
        _world.Store.SetUserPolicy("alice@gw.example", EncryptPolicy.Required, null, null);
        await using DaemonProcess daemon = await StartDaemonAsync(extra: "DomainPolicy = plain.example:opportunistic\n");
        await using PostfixInstance gateway = await PostfixInstance.StartAsync(daemon.Socket);
        await using PostfixInstance sender = await StartSenderAsync(gateway);

        string[] recipients = ["bob@partner.example", "stranger@nowhere.example", "loose@plain.example", "carol@partner.example"];
        byte[] message = GatewayWorld.PlainMessage("alice@gw.example", string.Join(", ", recipients), "the quarterly numbers");
        Assert.Equal(250, (await sender.SendAsync("alice@gw.example", recipients, message)).Code);

        // bob and carol share one encrypted copy; loose gets a signed-only one; alice gets the bounce for stranger.
        IReadOnlyList<SinkMessage> copies = await DeliveredAsync(sender, gateway, 3);
        Assert.DoesNotContain(copies, c => c.Recipients.Contains("<stranger@nowhere.example>"));
        foreach (SinkMessage copy in copies)
        {
            bool plaintext = (copy.Headers + copy.Body).Contains("the quarterly numbers", StringComparison.Ordinal);
            if (copy.Recipients.Any(r => r is "<bob@partner.example>" or "<carol@partner.example>"))
            {
                Assert.False(plaintext, $"plaintext to {string.Join(", ", copy.Recipients)}");
                Assert.Contains("the quarterly numbers", DecryptAndVerify(copy, _world.Bob), StringComparison.Ordinal);
                Assert.Contains("the quarterly numbers", DecryptAndVerify(copy, _world.Carol), StringComparison.Ordinal);
            }
            else
            {
                // Allowed in plaintext only: the opportunistic recipient, and the bounce to alice herself.
                Assert.True(copy.Recipients.SequenceEqual(["<loose@plain.example>"]) || copy.Recipients.SequenceEqual(["<alice@gw.example>"]) && copy.MailFrom == "<>",
                    $"unexpected copy to {string.Join(", ", copy.Recipients)} from {copy.MailFrom}");
            }
        }

        Assert.Equal(2, copies.Where(c => c.Recipients.Any(r => r is "<bob@partner.example>" or "<carol@partner.example>")).SelectMany(c => c.Recipients).Count());
        Assert.Contains("multipart/signed", Assert.Single(copies, c => c.Recipients.Contains("<loose@plain.example>")).Headers, StringComparison.Ordinal);
        string senderLog = sender.ReadMailLog();
        Assert.Contains("550 5.7.1 <stranger@nowhere.example>", senderLog, StringComparison.Ordinal);
        Assert.Contains("452 4.5.3 <loose@plain.example>", senderLog, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMixedInboundTransactionSplitsVia452AndTheOtherRecipientGetsItStillEncrypted()
    {
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance gateway = await PostfixInstance.StartAsync(daemon.Socket);
        await using PostfixInstance sender = await StartSenderAsync(gateway);

        // bob writes to alice (a gateway user) and to carol (who reads S/MIME herself), encrypted to both.
        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nmeeting at noon\r\n"));
        byte[] message = _world.OpensslMessage("From: bob@partner.example\r\nTo: alice@gw.example, carol@partner.example\r\nSubject: split\r\n",
            "cms", "-encrypt", "-aes256", "-in", entity, _world.Alice.CertFile, _world.Carol.CertFile);
        Assert.Equal(250, (await sender.SendAsync("bob@partner.example", ["alice@gw.example", "carol@partner.example"], message)).Code);

        IReadOnlyList<SinkMessage> copies = await DeliveredAsync(sender, gateway, 2);
        Assert.Equal(2, copies.Count);
        SinkMessage forAlice = Assert.Single(copies, c => c.Recipients.SequenceEqual(["<alice@gw.example>"]));
        Assert.Contains("meeting at noon", forAlice.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("pkcs7-mime", forAlice.Headers, StringComparison.Ordinal);

        SinkMessage forCarol = Assert.Single(copies, c => c.Recipients.SequenceEqual(["<carol@partner.example>"]));
        Assert.Contains("application/pkcs7-mime", forCarol.Headers, StringComparison.Ordinal);
        Assert.DoesNotContain("meeting at noon", forCarol.Headers + forCarol.Body, StringComparison.Ordinal);
        string decrypted = _world.Temp.File("carol.txt");
        OpensslTool.Run("cms", "-decrypt", "-in", _world.Write(Encoding.ASCII.GetBytes(forCarol.Headers + "\n" + forCarol.Body)), "-recip", _world.Carol.CertFile, "-inkey", _world.Carol.KeyFile, "-out", decrypted);
        Assert.Contains("meeting at noon", File.ReadAllText(decrypted), StringComparison.Ordinal);
        Assert.Contains("452 4.5.3", sender.ReadMailLog(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GatewayThenListsAUsersPlainPostIsSignedEncryptedAndReKeyedForEachMember()
    {
        const string List = "crypto@lists.gw.example";
        _world.CreateList(List, _world.Bob, _world.Carol);
        await using DaemonProcess daemon = await StartDaemonAsync("gateway, lists");
        await using SecureListPostfix postfix = await SecureListPostfix.StartAsync(daemon.Socket, "lists.gw.example");

        SmtpResult posted = await postfix.Postfix.SendAsync("alice@gw.example", [List], GatewayWorld.PlainMessage("alice@gw.example", List, "a plain post to an encrypted list"));
        Assert.Equal(250, posted.Code);
        SinkMessage delivered = Assert.Single(await postfix.Postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Equal(["<bob@partner.example>", "<carol@partner.example>"], delivered.Recipients.Order(StringComparer.Ordinal));
        Assert.DoesNotContain("a plain post", delivered.Headers + delivered.Body, StringComparison.Ordinal);
        foreach (Party member in new[] { _world.Bob, _world.Carol })
        {
            Assert.Contains("a plain post to an encrypted list", DecryptAndVerify(delivered, member), StringComparison.Ordinal);
        }

        // A sender who is not a gateway user meets the list's plaintext policy: refused, nothing delivered.
        SmtpResult refused = await postfix.Postfix.SendAsync("bob@partner.example", [List], GatewayWorld.PlainMessage("bob@partner.example", List, "plain from outside"));
        Assert.Equal(550, refused.Code);
        Assert.Contains("5.7.1", refused.Text, StringComparison.Ordinal);
        await postfix.Postfix.WaitForQueueEmptyAsync(s_delivery);
        Assert.Single(postfix.Postfix.ReadSinkMessages());
        Assert.Equal(0, postfix.DeferredCount());
    }

    [Fact]
    public async Task AChangedCertificateOfAPinnedCorrespondentWaitsAndTheUserIsToldByMailThroughTheLocalMta()
    {
        _world.Know(_world.Bob);
        Party newBob = _world.Issue("bob@partner.example", GatewayWorld.FreshKey());
        string socket = $"inet:127.0.0.1:{ExternalTool.FreeTcpPort()}";
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(socket);
        string ini = _world.DaemonIni("gateway").Replace("{SOCKET}", socket, StringComparison.Ordinal)
            .Replace("[Notices]\nEnabled = no\n", $"[Notices]\nSmtpServer = 127.0.0.1:{postfix.SmtpPort}\nFrom = postmaster@gw.example\n", StringComparison.Ordinal);
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(ini);

        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nmy new certificate\r\n"));
        byte[] signed = _world.OpensslMessage("From: bob@partner.example\r\nTo: alice@gw.example\r\nSubject: new cert\r\n",
            "cms", "-sign", "-in", entity, "-signer", newBob.CertFile, "-inkey", newBob.KeyFile);
        Assert.Equal(250, (await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], signed)).Code);

        // The message (validly signed, chained to the CA) and the notice to alice, submitted by the daemon to Postfix.
        IReadOnlyList<SinkMessage> delivered = await postfix.WaitForSinkMessagesAsync(2, s_delivery);
        string fingerprint = MilterSecureList.Directory.CertificateInspector.Sha256Fingerprint(newBob.Certificate);
        SinkMessage notice = Assert.Single(delivered, m => m.Headers.Contains("Subject: Certificate change for bob@partner.example", StringComparison.Ordinal));
        Assert.Equal("<>", notice.MailFrom);
        Assert.Equal(["<alice@gw.example>"], notice.Recipients);
        Assert.Contains("Auto-Submitted: auto-generated", notice.Headers, StringComparison.Ordinal);
        Assert.Contains(fingerprint, notice.Body, StringComparison.Ordinal);
        Assert.Contains(MilterSecureList.Directory.CertificateInspector.Sha256Fingerprint(_world.Bob.Certificate), notice.Body, StringComparison.Ordinal);
        Assert.Contains("securelist cert accept bob@partner.example", notice.Body, StringComparison.Ordinal);
        await daemon.WaitForOutputAsync("certificate change for bob@partner.example");

        // The new certificate waits; encryption still uses the pinned one.
        Assert.Contains(_world.Store.GetCertificates("bob@partner.example"), c => c.State == CorrespondentState.Pending && c.Fingerprint == fingerprint);
        Assert.Equal(MilterSecureList.Directory.CertificateInspector.Sha256Fingerprint(_world.Bob.Certificate), _world.Directory.FindCertificate("bob@partner.example", DateTimeOffset.UtcNow)!.Fingerprint);
    }

    [Fact]
    public async Task WithOpenDkimSigningAfterTheGatewayTheEncryptedMailCarriesADkimSignatureThatVerifies()
    {
        // contrib/postfix/gateway.md: the gateway before DKIM signing, so the signature covers what leaves.
        _world.Know(_world.Bob);
        await using OpenDkim dkim = await OpenDkim.StartSigningAsync(_world.Temp.File("dkim"), "gw.example");
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance postfix = await PostfixInstance.StartAsync($"{daemon.Socket}, {dkim.Socket}");

        SmtpResult sent = await postfix.SendAsync("alice@gw.example", ["bob@partner.example"], GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example", "signed twice"));
        Assert.Equal(250, sent.Code);
        SinkMessage delivered = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Contains("\nDKIM-Signature: v=1;", "\n" + delivered.Headers, StringComparison.Ordinal);
        Assert.Contains("application/pkcs7-mime", delivered.Headers, StringComparison.Ordinal);
        Assert.Contains("signed twice", DecryptAndVerify(delivered, _world.Bob), StringComparison.Ordinal);

        string verdict = await dkim.VerifyAsync(delivered.Headers + "\n" + delivered.Body);
        Assert.Contains("d=gw.example", verdict, StringComparison.Ordinal);
        Assert.EndsWith("succeeded", verdict, StringComparison.Ordinal);

        // The check can fail: one changed byte of the encrypted body breaks the DKIM signature.
        int i = delivered.Body.IndexOf('A', StringComparison.Ordinal);
        string altered = delivered.Body[..i] + "B" + delivered.Body[(i + 1)..];
        Assert.Contains("failed", await dkim.VerifyAsync(delivered.Headers + "\n" + altered), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithOpenDkimVerifyingBeforeTheGatewayTheSendersDkimResultSurvivesDecryption()
    {
        // contrib/postfix/gateway.md: DKIM verification before the gateway, which then decrypts what was verified.
        await using OpenDkim dkim = await OpenDkim.StartVerifyingAsync(_world.Temp.File("dkim-v"), "partner.example");
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance postfix = await PostfixInstance.StartAsync($"{dkim.Socket}, {daemon.Socket}");

        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nverified, then decrypted\r\n"));
        byte[] encrypted = _world.OpensslMessage("From: bob@partner.example\r\nTo: alice@gw.example\r\nSubject: dkim in\r\nDate: Fri, 4 Dec 2026 20:00:00 +0000\r\nMessage-ID: <dkim1@partner.example>\r\n",
            "cms", "-encrypt", "-aes256", "-in", entity, _world.Alice.CertFile);
        byte[] signed = await dkim.SignAsync(encrypted, "partner.example");
        Assert.Equal(250, (await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], signed)).Code);

        SinkMessage delivered = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Contains("verified, then decrypted", delivered.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("pkcs7-mime", delivered.Headers, StringComparison.Ordinal);
        // The verifier saw the message as sent (before the gateway changed it), and the gateway kept its result.
        Assert.Contains($"Authentication-Results: {OpenDkim.AuthservId};", delivered.Headers, StringComparison.Ordinal);
        Assert.Contains("dkim=pass", delivered.Headers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MailOpensslSignsAndEncryptsToAnEcUserArrivesThroughPostfixDecryptedAndVerified()
    {
        // An EC (P-256) gateway user: openssl's KeyAgreeRecipientInfo is opened with the user's ECDH key, and the
        // user's own outbound mail is signed with ECDSA that openssl verifies on the way out.
        Party erin = _world.Issue("erin@gw.example", System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256));
        _world.Administration.Import(erin.Address, erin.CertFile, erin.KeyFile, null, false, null, null, null).Dispose();
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);

        string signedEntity = _world.Temp.File("ec-signed.eml");
        OpensslTool.Run("cms", "-sign", "-in", _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nfor an elliptic reader\r\n")),
            "-signer", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile, "-out", signedEntity);
        byte[] encrypted = _world.OpensslMessage($"From: bob@partner.example\r\nTo: {erin.Address}\r\nSubject: ec in\r\n",
            "cms", "-encrypt", "-aes256", "-in", signedEntity, "-recip", erin.CertFile);
        Assert.Equal(250, (await postfix.SendAsync("bob@partner.example", [erin.Address], encrypted)).Code);
        Assert.Equal(250, (await postfix.SendAsync(erin.Address, ["carol@partner.example"], GatewayWorld.PlainMessage(erin.Address, "carol@partner.example", "from an elliptic writer"))).Code);

        IReadOnlyList<SinkMessage> delivered = await postfix.WaitForSinkMessagesAsync(2, s_delivery);
        SinkMessage inbound = Assert.Single(delivered, m => m.Recipients.Contains($"<{erin.Address}>"));
        Assert.Contains("\nfor an elliptic reader", inbound.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("pkcs7-mime", inbound.Headers, StringComparison.Ordinal);
        Assert.Contains("smime=pass body.smime-identifier=bob@partner.example", inbound.Headers, StringComparison.Ordinal);
        await daemon.WaitForOutputAsync("gateway audit: decrypted for erin@gw.example");

        SinkMessage outbound = Assert.Single(delivered, m => m.Recipients.Contains("<carol@partner.example>"));
        string content = _world.Temp.File("ec-out.txt");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-verify", "-in", _world.Write(Encoding.ASCII.GetBytes(outbound.Headers + "\n" + outbound.Body)), "-CAfile", _world.CaFile, "-out", content);
        Assert.True(code == 0, "openssl cms -verify: " + error);
        Assert.Contains("from an elliptic writer", File.ReadAllText(content), StringComparison.Ordinal);
    }
}
