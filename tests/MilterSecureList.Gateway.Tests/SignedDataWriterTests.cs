using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.Tests;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// The SignedData the gateway writes itself (SignedDataWriter) against .NET's SignedCms and openssl: the same bytes
/// for RSA (PKCS#1 v1.5 signatures are deterministic), the same structure for ECDSA, and a signature that fails
/// once content or signed attributes change.
/// </summary>
public sealed class SignedDataWriterTests : IDisposable
{
    private static readonly byte[] s_content = Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nsigned by the gateway\r\n");
    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void RsaIsByteForByteWhatSignedCmsWrites(bool detached, bool withChain)
    {
        // A signing time with fractions of a second: both must cut them off (UTCTime has whole seconds).
        var now = new DateTimeOffset(2026, 3, 4, 5, 6, 7, 890, TimeSpan.Zero);
        byte[][] chain = withChain ? [_world.Ca.RawData] : [];

        byte[] ours = SmimeSigner.CreateSignedData(s_content, _world.Alice.Certificate, _world.Alice.Key, chain, now, detached);
        byte[] reference = SmimeSigner.CreateSignedDataWithSignedCms(s_content, _world.Alice.Certificate, _world.Alice.Key, chain, now, detached);

        Assert.Equal(Convert.ToHexString(reference), Convert.ToHexString(ours));
    }

    [Fact]
    public void SigningTimesFrom2050AreGeneralizedTime()
    {
        // RFC 5652 §11.3; SignedCms's Pkcs9SigningTime cannot encode them at all.
        var later = new DateTimeOffset(2051, 1, 2, 3, 4, 5, TimeSpan.Zero);
        byte[] ours = SmimeSigner.CreateSignedData(s_content, _world.Alice.Certificate, _world.Alice.Key, [], later, detached: true);

        Assert.True(ours.AsSpan().IndexOf((byte[])[0x18, 0x0f, .. "20510102030405Z"u8]) > 0);
        Decoded(ours, detached: true).CheckSignature(verifySignatureOnly: true);
        OpensslVerifies(ours, detached: true);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void EcdsaVerifiesInSignedCmsAndOpensslWithTheAttributesSignedCmsWrites(bool detached)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Party dave = _world.Issue("dave@gw.example", key, keyUsage: X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement);
        DateTimeOffset now = DateTimeOffset.UtcNow;

        byte[] ours = SmimeSigner.CreateSignedData(s_content, dave.Certificate, key, [], now, detached);
        byte[] reference = SmimeSigner.CreateSignedDataWithSignedCms(s_content, dave.Certificate, key, [], now, detached);

        SignerInfo mine = Decoded(ours, detached).SignerInfos[0];
        SignerInfo theirs = Decoded(reference, detached).SignerInfos[0];
        Assert.Equal(theirs.SignatureAlgorithm.Value, mine.SignatureAlgorithm.Value);
        Assert.Equal(theirs.DigestAlgorithm.Value, mine.DigestAlgorithm.Value);
        Assert.Equal(Attributes(theirs), Attributes(mine));
        mine.CheckSignature(verifySignatureOnly: true);
        OpensslVerifies(ours, detached);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RsaVerifiesWithOpenssl(bool detached) =>
        OpensslVerifies(SmimeSigner.CreateSignedData(s_content, _world.Alice.Certificate, _world.Alice.Key, [], DateTimeOffset.UtcNow, detached), detached);

    [Fact]
    public void ChangedContentOrSignedAttributesFailTheSignature()
    {
        var now = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
        byte[] signature = SmimeSigner.CreateSignedData(s_content, _world.Alice.Certificate, _world.Alice.Key, [], now, detached: true);
        Decoded(signature, detached: true).CheckSignature(verifySignatureOnly: true);
        byte[] altered = [.. s_content];
        altered[^4] ^= 0x20;
        Assert.Throws<CryptographicException>(() => Decoded(signature, detached: true, altered).CheckSignature(verifySignatureOnly: true));

        // One bit of the signing time flipped inside the signed attributes: the digest still matches, the signature not.
        int at = signature.AsSpan().IndexOf("260304050607Z"u8);
        Assert.True(at > 0);
        byte[] forged = [.. signature];
        forged[at + 11] ^= 0x01;
        Assert.Throws<CryptographicException>(() => Decoded(forged, detached: true).CheckSignature(verifySignatureOnly: true));
    }

    private static SignedCms Decoded(byte[] encoded, bool detached, byte[]? content = null)
    {
        var cms = new SignedCms(new ContentInfo(content ?? s_content), detached);
        cms.Decode(encoded);
        return cms;
    }

    private static List<string> Attributes(SignerInfo signer) =>
        [.. signer.SignedAttributes.Cast<CryptographicAttributeObject>().Where(a => a.Oid.Value != "1.2.840.113549.1.9.5")
            .Select(a => $"{a.Oid.Value}={Convert.ToHexString(a.Values[0].RawData)}")];

    private void OpensslVerifies(byte[] signedData, bool detached)
    {
        string der = _world.Temp.File($"sig{Guid.NewGuid():N}.der");
        string content = _world.Temp.File($"content{Guid.NewGuid():N}.txt");
        string output = _world.Temp.File($"out{Guid.NewGuid():N}.txt");
        File.WriteAllBytes(der, signedData);
        File.WriteAllBytes(content, s_content);
        string[] args = ["cms", "-verify", "-binary", "-inform", "DER", "-in", der, "-CAfile", _world.CaFile, "-purpose", "any", "-out", output];
        (int code, _, string error) = OpensslTool.TryRun(detached ? [.. args, "-content", content] : args);
        Assert.True(code == 0, error);
        Assert.Equal(s_content, File.ReadAllBytes(output));
    }
}
