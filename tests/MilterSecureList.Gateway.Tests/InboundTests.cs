using System.Text;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// Inbound: mail made by openssl (signed, opaque-signed, signed-then-encrypted) to the gateway user alice, and every
/// way of tampering with it that the gateway must refuse before the message is queued.
/// </summary>
public sealed class InboundTests : IDisposable
{
    private const string Entity = "Content-Type: text/plain; charset=us-ascii\r\n\r\nMeet me at noon by the old mill.\r\n";

    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    private static string Outer(string from = "bob@partner.example", string extra = "") =>
        $"From: Bob <{from}>\nTo: alice@gw.example\nSubject: inbound\nMessage-ID: <m1@partner.example>\n{extra}";

    private byte[] SignedBy(Party signer, string outer, string entity = Entity, bool opaque = false) => _world.OpensslMessage(
        outer,
        ["cms", "-sign", "-in", _world.Write(Encoding.ASCII.GetBytes(entity)), "-signer", signer.CertFile, "-inkey", signer.KeyFile, .. (opaque ? new[] { "-nodetach" } : [])]);

    private (GatewayResult Result, string Output) Receive(byte[] message, params string[] recipients)
    {
        (GatewayResult result, byte[] output, _) = _world.Run("bob@partner.example", recipients.Length == 0 ? ["alice@gw.example"] : recipients, message);
        return (result, Encoding.UTF8.GetString(output));
    }

    [Fact]
    public void AValidSignatureAddsAuthenticationResultsRemovesForgedOnesAndHarvests()
    {
        byte[] message = SignedBy(_world.Bob, Outer(extra: "Authentication-Results: gw.example; smime=pass body.smime-identifier=mallory@evil.example\nAuthentication-Results: other.example; dkim=pass\n"));
        (GatewayResult result, string output) = Receive(message);

        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.StartsWith("Authentication-Results: gw.example; smime=pass body.smime-identifier=bob@partner.example\r\n", output, StringComparison.Ordinal);
        Assert.DoesNotContain("mallory", output, StringComparison.Ordinal);
        Assert.Contains("other.example; dkim=pass", output, StringComparison.Ordinal);
        Assert.Contains("Meet me at noon", output, StringComparison.Ordinal);

        CorrespondentCertificate harvested = Assert.Single(_world.Store.GetCertificates("bob@partner.example"));
        Assert.Equal(CertificateTrust.Harvested, harvested.Trust);
        Assert.True(harvested.Pinned);
        Assert.NotNull(SmimeCapabilities.TryDecode(harvested.Capabilities!)); // openssl announces its ciphers
        Assert.Contains(_world.Log.Lines, l => l.Contains("signature by bob@partner.example verified message-id=<m1@partner.example>", StringComparison.Ordinal));
    }

    [Fact]
    public void AnOpaqueSignatureIsVerifiedAndUnwrapped()
    {
        (GatewayResult result, string output) = Receive(SignedBy(_world.Bob, Outer(), opaque: true));
        Assert.True(result.Reason.Contains("opaque signature by bob@partner.example verified and unwrapped", StringComparison.Ordinal), result.Reason);
        Assert.Contains("Meet me at noon", output, StringComparison.Ordinal);
        Assert.DoesNotContain("pkcs7-mime", output, StringComparison.Ordinal);
        Assert.Contains("smime=pass", output, StringComparison.Ordinal);
    }

    [Fact]
    public void SignedThenEncryptedMailIsDecryptedVerifiedAndReplaced()
    {
        string signed = _world.Write(SignedBy(_world.Bob, string.Empty));
        byte[] message = _world.OpensslMessage(Outer(), "cms", "-encrypt", "-aes256", "-in", signed, _world.Alice.CertFile);
        Assert.DoesNotContain("Meet me", Encoding.ASCII.GetString(message), StringComparison.Ordinal);

        (GatewayResult result, string output) = Receive(message);
        Assert.Equal("decrypted for alice@gw.example, signature by bob@partner.example verified", result.Reason);
        Assert.Contains("Meet me at noon", output, StringComparison.Ordinal);
        Assert.Contains("multipart/signed", output, StringComparison.Ordinal);
        Assert.Contains("smime=pass body.smime-identifier=bob@partner.example", output, StringComparison.Ordinal);
        Assert.Contains(_world.Log.Lines, l => l.Contains("gateway audit: decrypted for alice@gw.example message-id=<m1@partner.example>", StringComparison.Ordinal) && l.Contains("QID1", StringComparison.Ordinal));
        Assert.DoesNotContain(_world.Log.Lines, l => l.Contains("Meet me", StringComparison.Ordinal));
    }

    [Fact]
    public void MailNotEncryptedToTheUserStaysEncrypted()
    {
        byte[] message = _world.OpensslMessage(Outer(), "cms", "-encrypt", "-aes256", "-in", _world.Write(Encoding.ASCII.GetBytes(Entity)), _world.Carol.CertFile);
        (GatewayResult result, string output) = Receive(message);
        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.Contains("left encrypted: not encrypted to alice@gw.example's certificate", result.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("Meet me", output, StringComparison.Ordinal);
    }

    [Fact]
    public void OtherRecipientsOfAnInboundTransactionAreDeferredWith452()
    {
        GatewayTransaction transaction = _world.Processor.Begin("<bob@partner.example>");
        Assert.Null(_world.Processor.CheckRecipient(transaction, "<alice@gw.example>"));
        GatewayReply deferred = _world.Processor.CheckRecipient(transaction, "<someone@elsewhere.example>")!;
        Assert.Equal((452, "4.5.3"), (deferred.Code, deferred.EnhancedCode));
        Assert.Equal(GatewayDirection.Inbound, transaction.Direction);

        // And the other way round: a transaction that began with a non-user defers the gateway user.
        GatewayTransaction other = _world.Processor.Begin("<bob@partner.example>");
        Assert.Null(_world.Processor.CheckRecipient(other, "<someone@elsewhere.example>"));
        Assert.Equal(452, _world.Processor.CheckRecipient(other, "<alice@gw.example>")!.Code);
        Assert.Equal(GatewayDirection.None, other.Direction);
    }

    public static TheoryData<string> TamperedCases => ["one byte of signed content", "a signed header", "signer for another address", "expired certificate", "untrusted chain", "no signature part"];

    [Theory]
    [MemberData(nameof(TamperedCases))]
    public void TamperedOrForgedMailIsRefusedWith550(string tampering)
    {
        byte[] message = tampering switch
        {
            "one byte of signed content" => Replace(SignedBy(_world.Bob, Outer()), "noon", "nine"),
            "a signed header" => Replace(SignedBy(_world.Bob, Outer()), "charset=us-ascii", "charset=iso-8859-1"),
            "signer for another address" => SignedBy(_world.Carol, Outer()),
            "expired certificate" => SignedBy(_world.Issue("bob@partner.example", GatewayWorld.FreshKey(), DateTimeOffset.UtcNow.AddDays(-60), DateTimeOffset.UtcNow.AddDays(-1)), Outer()),
            "untrusted chain" => SignedBy(_world.Issue("bob@partner.example", GatewayWorld.FreshKey(), selfSigned: true), Outer()),
            _ => Truncate(SignedBy(_world.Bob, Outer())),
        };

        (GatewayResult result, _) = Receive(message);
        Assert.Equal(GatewayVerdict.Reject, result.Verdict);
        Assert.Equal(550, result.Reply!.Code);
        string expected = tampering switch
        {
            "one byte of signed content" or "a signed header" => "the message was altered",
            "signer for another address" => "issued to carol@partner.example, not to the From address bob@partner.example",
            "expired certificate" => "expired or not yet valid",
            "untrusted chain" => "does not chain to a trusted CA",
            _ => "multipart/signed must have exactly two parts",
        };
        Assert.Contains(expected, result.Reply.Text, StringComparison.Ordinal);
        Assert.Empty(_world.Store.GetCertificates("bob@partner.example")); // nothing harvested from a bad signature
    }

    [Fact]
    public void ByPolicyAnInvalidSignatureIsDeliveredWithAWarning()
    {
        _world.Options.InvalidSignature = InvalidSignatureAction.Warn;
        (GatewayResult result, string output) = Receive(Replace(SignedBy(_world.Bob, Outer()), "noon", "nine"));
        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.StartsWith("Authentication-Results: gw.example; smime=fail reason=\"the signature does not match the content", output, StringComparison.Ordinal);
    }

    [Fact]
    public void AHarvestedCertificateReplacingAPinnedOneWaitsAndIsLogged()
    {
        _world.Know(_world.Bob);
        Party renewed = _world.Issue("bob@partner.example", GatewayWorld.FreshKey());
        (GatewayResult result, _) = Receive(SignedBy(renewed, Outer()));
        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.Single(_world.Store.GetCertificates("bob@partner.example"), c => c.State == CorrespondentState.Pending);
        Assert.Equal(_world.Bob.Certificate.RawData, _world.Store.FindEncryptionCertificate("bob@partner.example", DateTimeOffset.UtcNow)!.Der);
        Assert.Contains(_world.Log.Lines, l => l.Contains("certificate change for bob@partner.example", StringComparison.Ordinal));
    }

    private static byte[] Replace(byte[] message, string from, string to)
    {
        string text = Encoding.ASCII.GetString(message);
        int at = text.IndexOf(from, StringComparison.Ordinal);
        Assert.True(at >= 0, $"'{from}' not in the message");
        return Encoding.ASCII.GetBytes(text[..at] + to + text[(at + from.Length)..]);
    }

    private static byte[] Truncate(byte[] message)
    {
        string text = Encoding.ASCII.GetString(message);
        return Encoding.ASCII.GetBytes(text[..text.IndexOf("Content-Type: application/pkcs7-signature", StringComparison.Ordinal)]);
    }
}
