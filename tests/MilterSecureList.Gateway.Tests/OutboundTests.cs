using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Gateway.Tests;

/// <summary>Outbound: what the gateway signs and encrypts for a user, read back by openssl (an independent implementation).</summary>
public sealed class OutboundTests : IDisposable
{
    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    [Fact]
    public void SignedAndEncryptedMailDecryptsAndVerifiesWithOpenssl()
    {
        _world.Know(_world.Bob);
        byte[] message = GatewayWorld.PlainMessage("Alice <alice@gw.example>", "bob@partner.example", "Grüße aus dem Gateway\r\n.\r\nline with trailing space ");
        (GatewayResult result, byte[] output, List<GatewayReply?> replies) = _world.Run("alice@gw.example", ["bob@partner.example"], message);

        Assert.Null(replies[0]);
        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.Contains("signed (multipart/signed)", result.Reason, StringComparison.Ordinal);
        Assert.Contains("AES-256-CBC, RSA PKCS#1 v1.5", result.Reason, StringComparison.Ordinal);
        string text = Encoding.UTF8.GetString(output);
        Assert.Contains("smime-type=enveloped-data", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Grüße", text, StringComparison.Ordinal);
        Assert.Contains("Subject: gateway test", text, StringComparison.Ordinal);

        string decrypted = _world.Temp.File("decrypted.eml");
        OpensslTool.Run("cms", "-decrypt", "-in", _world.Write(output), "-recip", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile, "-out", decrypted);
        Assert.Contains("multipart/signed", File.ReadAllText(decrypted), StringComparison.Ordinal);
        string content = _world.Temp.File("content.txt");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-verify", "-in", decrypted, "-CAfile", _world.CaFile, "-out", content);
        Assert.True(code == 0, error);
        Assert.Contains("Verification successful", error, StringComparison.Ordinal);
        Assert.Contains("Grüße aus dem Gateway", Encoding.UTF8.GetString(File.ReadAllBytes(content)).Replace("=C3=BC", "ü", StringComparison.Ordinal).Replace("=C3=9F", "ß", StringComparison.Ordinal), StringComparison.Ordinal);

        Assert.Contains(_world.Log.Lines, l => l.Contains("gateway audit: signed for alice@gw.example", StringComparison.Ordinal) && l.Contains("QID1", StringComparison.Ordinal));
        Assert.Contains(_world.Log.Lines, l => l.Contains("gateway audit: encrypted for alice@gw.example", StringComparison.Ordinal));
        Assert.DoesNotContain(_world.Log.Lines, l => l.Contains("Grüße", StringComparison.Ordinal) || l.Contains("PRIVATE", StringComparison.Ordinal));
    }

    [Fact]
    public void OpportunisticWithoutACertificateGoesOutSignedOnlyAndOpaqueWhenAsked()
    {
        _world.Know(_world.Bob);
        _world.Store.SetUserPolicy("alice@gw.example", null, null, opaque: true);
        byte[] message = GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example, nobody@else.example", "signed only");
        (GatewayResult result, byte[] output, List<GatewayReply?> replies) = _world.Run("alice@gw.example", ["bob@partner.example", "nobody@else.example"], message);

        Assert.All(replies, Assert.Null);
        Assert.Equal("signed (opaque)", result.Reason);
        string text = Encoding.ASCII.GetString(output);
        Assert.Contains("smime-type=signed-data", text, StringComparison.Ordinal);
        string content = _world.Temp.File("content.txt");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-verify", "-in", _world.Write(output), "-CAfile", _world.CaFile, "-out", content);
        Assert.True(code == 0, error);
        Assert.Contains("signed only", File.ReadAllText(content), StringComparison.Ordinal);
    }

    [Fact]
    public void RequiredRefusesARecipientWithoutCertificateAtRcptAndSplitsPlainOnes()
    {
        _world.Know(_world.Bob);
        _world.Store.SetUserPolicy("alice@gw.example", EncryptPolicy.Required, null, null);
        byte[] message = GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example", "secret");
        (GatewayResult result, byte[] output, List<GatewayReply?> replies) = _world.Run("alice@gw.example", ["bob@partner.example", "nobody@else.example"], message);

        Assert.Null(replies[0]);
        GatewayReply refused = replies[1]!;
        Assert.Equal((550, "5.7.1"), (refused.Code, refused.EnhancedCode));
        Assert.Contains("<nobody@else.example>", refused.Text, StringComparison.Ordinal);
        Assert.Contains("encrypted to 1 recipient(s)", result.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", Encoding.ASCII.GetString(output), StringComparison.Ordinal);

        // A domain that never gets encryption cannot share a body with a required recipient: 452, try separately.
        _world.Options.Domains = new Dictionary<string, DomainPolicy>(StringComparer.Ordinal) { ["legacy.example"] = new(EncryptPolicy.Never, null) };
        GatewayTransaction transaction = _world.Processor.Begin("<alice@gw.example>");
        Assert.Null(_world.Processor.CheckRecipient(transaction, "<bob@partner.example>"));
        GatewayReply split = _world.Processor.CheckRecipient(transaction, "<old@legacy.example>")!;
        Assert.Equal((452, "4.5.3"), (split.Code, split.EnhancedCode));
        Assert.True(transaction.WillEncrypt);
    }

    [Fact]
    public void MailTheUserAlreadySignedOrEncryptedIsNotTouched()
    {
        _world.Know(_world.Bob);
        byte[] signed = _world.OpensslMessage("From: alice@gw.example\nTo: bob@partner.example\nSubject: s\n",
            "cms", "-sign", "-in", _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nhello\r\n")), "-signer", _world.Alice.CertFile, "-inkey", _world.Alice.KeyFile);
        (GatewayResult result, _, _) = _world.Run("alice@gw.example", ["bob@partner.example"], signed);
        Assert.False(result.HasModifications);
        Assert.Contains("untouched", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AesGcmAndOaepOnlyWhenEveryRecipientAnnouncedThem()
    {
        _world.Know(_world.Bob);
        _world.Know(_world.Carol);
        byte[] modern = SmimeCapabilities.Encode([SmimeCapabilities.Aes256Gcm, SmimeCapabilities.Aes256Cbc, SmimeCapabilities.RsaesOaep]);
        _world.Directory.Harvest(_world.Bob.Address, _world.Bob.Certificate, modern);
        byte[] message = GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example", "modern ciphers");

        (GatewayResult onlyBob, byte[] gcm, _) = _world.Run("alice@gw.example", ["bob@partner.example"], message);
        Assert.Contains("AES-256-GCM, RSAES-OAEP", onlyBob.Reason, StringComparison.Ordinal);
        Assert.Contains("smime-type=authEnveloped-data", Encoding.ASCII.GetString(gcm), StringComparison.Ordinal);
        string decrypted = _world.Temp.File("gcm.eml");
        OpensslTool.Run("cms", "-decrypt", "-in", _world.Write(gcm), "-recip", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile, "-out", decrypted);
        Assert.Contains("multipart/signed", File.ReadAllText(decrypted), StringComparison.Ordinal);

        // Carol announced nothing: the whole message falls back to what every client reads.
        (GatewayResult both, byte[] cbc, _) = _world.Run("alice@gw.example", ["bob@partner.example", "carol@partner.example"], message);
        Assert.Contains("encrypted to 2 recipient(s) (AES-256-CBC, RSA PKCS#1 v1.5)", both.Reason, StringComparison.Ordinal);
        foreach (Party reader in new[] { _world.Bob, _world.Carol })
        {
            OpensslTool.Run("cms", "-decrypt", "-in", _world.Write(cbc), "-recip", reader.CertFile, "-inkey", reader.KeyFile, "-out", _world.Temp.File($"{reader.Address}.eml"));
        }
    }
}
