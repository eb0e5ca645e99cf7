using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Cms;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// The one-pass outbound path (sign, assemble, encrypt in place in pooled buffers) and the in-place base64 decoder
/// (docs/design.md, "Gateway performance") against the step-by-step path they replace and the framework: the same
/// plaintext entity once the random boundary is set aside, an EnvelopedData openssl and our decryptor read, and
/// base64 decoded exactly as Convert.FromBase64String decodes it, refusals included.
/// </summary>
public sealed class PooledPathTests : IDisposable
{
    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(70_000)]
    [InlineData(102_400)]
    public void CbcEnvelopeIsWhatTheEncryptorWritesAndDecrypts(int length)
    {
        byte[] content = RandomNumberGenerator.GetBytes(length);
        CmsRecipient[] recipients = [CmsRecipient.FromCertificate(_world.Bob.Certificate), CmsRecipient.FromCertificate(_world.Carol.Certificate)];
        using var envelope = new CmsCbcEnvelope(recipients);
        byte[] buffer = new byte[envelope.Length(length) + 7];
        int written = envelope.Write(content, buffer);
        byte[] ours = buffer[..written];

        byte[] reference = CmsEncryptor.Encrypt(content, recipients);
        Assert.Equal(reference.Length, ours.Length);
        Assert.Equal(content, CmsDecryptor.Decrypt(ours, _world.Bob.Certificate, _world.Bob.Key));
        Assert.Equal(content, CmsDecryptor.Decrypt(ours, _world.Carol.Certificate, _world.Carol.Key));
        Assert.Throws<ArgumentException>(() => envelope.Write(content, new byte[written - 1]));

        string der = _world.Write(ours, "env.der");
        string output = _world.Temp.File($"dec{length}.bin");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-decrypt", "-binary", "-inform", "DER", "-in", der, "-recip", _world.Carol.CertFile, "-inkey", _world.Carol.KeyFile, "-out", output);
        Assert.True(code == 0, error);
        Assert.Equal(content, File.ReadAllBytes(output));
    }

    [Fact]
    public void TamperedCiphertextOfTheEnvelopeIsRefused()
    {
        byte[] content = RandomNumberGenerator.GetBytes(1000);
        using var envelope = new CmsCbcEnvelope([CmsRecipient.FromCertificate(_world.Bob.Certificate)]);
        byte[] der = new byte[envelope.Length(content.Length)];
        envelope.Write(content, der);
        der[^1] ^= 0x55; // the last block's padding no longer checks out, or the plaintext changes
        Exception? failure = Record.Exception(() => Assert.NotEqual(content, CmsDecryptor.Decrypt(der, _world.Bob.Certificate, _world.Bob.Key)));
        Assert.True(failure is null or CmsRewrapException, failure?.ToString());
    }

    [Fact]
    public void OnePassSignedAndEnvelopedEntityIsTheStepByStepOne()
    {
        MimeEntityBytes content = MimeEntityBytes.Parse(Encoding.ASCII.GetBytes(
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + string.Concat(Enumerable.Repeat("Short 7-bit lines of text.\r\n", 4000))));
        List<GatewayHeader> headers = Assert.IsType<List<GatewayHeader>>(SmimeSigner.AlreadyCanonical(content));
        var now = new DateTimeOffset(2026, 5, 6, 7, 8, 9, TimeSpan.Zero);
        CmsRecipient[] recipients = [CmsRecipient.FromCertificate(_world.Bob.Certificate)];
        byte[][] chain = [_world.Ca.RawData];

        MimeEntityBytes ours = SmimeSigner.SignedAndEnveloped(headers, content.Body, _world.Alice.Certificate, _world.Alice.Key, chain, now, recipients);
        byte[] canonical = SmimeSigner.Canonicalize(content);
        MimeEntityBytes signed = SmimeSigner.MultipartSigned(canonical, SmimeSigner.CreateSignedDataWithSignedCms(canonical, _world.Alice.Certificate, _world.Alice.Key, chain, now, detached: true));
        MimeEntityBytes reference = SmimeSigner.Pkcs7Mime(CmsEncryptor.Encrypt(signed.ToBytes(), recipients), "enveloped-data");

        Assert.Equal(reference.Headers, ours.Headers);
        Assert.Equal(reference.Body.Length, ours.Body.Length);
        string mine = WithoutBoundary(Decrypt(ours.Body));
        string theirs = WithoutBoundary(Decrypt(reference.Body));
        Assert.Equal(theirs, mine);

        // And a client reads it: openssl decrypts and verifies the signature over the text.
        byte[] message = Encoding.ASCII.GetBytes("MIME-Version: 1.0\r\n" + string.Concat(ours.Headers.Select(MessageText.HeaderLine)) + "\r\n" + Encoding.ASCII.GetString(ours.Body));
        Assert.Contains("Short 7-bit lines of text.", _world.DecryptAndVerify(message, _world.Bob), StringComparison.Ordinal);
    }

    public static TheoryData<string> Base64Texts() => new()
    {
        string.Empty,
        "\r\n",
        "QQ==",
        "QUI=\r\n",
        "QUJD\r\nREVG\r\n",
        " QU\tJD \r\n RE VG ",
        "QUJDREVGR0g=",
        "QUJD=REVG",
        "QUJDR",
        "QUJD!EVG",
        "QUJDRE==",
        "QQ==QQ==",
        "\u00e9UJD",
    };

    [Theory]
    [MemberData(nameof(Base64Texts))]
    public void Base64LinesDecodeAsTheFrameworkDecodesThem(string text)
    {
        byte[] bytes = Encoding.Latin1.GetBytes(text);
        byte[]? expected;
        try
        {
            expected = Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            expected = null;
        }

        Assert.Equal(expected, MessageText.FromBase64Lines(bytes));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(57)]
    [InlineData(100_001)]
    public void Base64LinesRoundTrip(int length)
    {
        byte[] data = RandomNumberGenerator.GetBytes(length);
        Assert.Equal(data, MessageText.FromBase64Lines(MessageText.Base64Lines(data)));
    }

    private byte[] Decrypt(byte[] base64Body) =>
        CmsDecryptor.Decrypt(Convert.FromBase64String(Encoding.ASCII.GetString(base64Body)), _world.Bob.Certificate, _world.Bob.Key);

    private static string WithoutBoundary(byte[] entity)
    {
        string text = Encoding.ASCII.GetString(entity);
        int at = text.IndexOf("=_smime_", StringComparison.Ordinal);
        Assert.True(at > 0);
        return text.Replace(text.Substring(at, 8 + 24), "=_smime_BOUNDARY", StringComparison.Ordinal);
    }
}
