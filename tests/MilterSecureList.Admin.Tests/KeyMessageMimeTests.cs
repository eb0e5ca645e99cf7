using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Directory.Tests.Fixtures;
using MimeKit;

namespace MilterSecureList.Admin.Tests;

/// <summary>The MIME of the member and sender tools (MimeKit): what the owner's signature covers is the canonical key part,
/// openssl checks it on its own, and any change to it is refused; entities to encrypt keep their Content-* fields byte for byte.</summary>
public sealed class KeyMessageMimeTests : IDisposable
{
    private const string List = "crypto@lists.example.org";

    private readonly TempDirectory _temp = new();
    private readonly X509Certificate2 _owner = SelfSigned("owner");

    public void Dispose()
    {
        _owner.Dispose();
        _temp.Dispose();
    }

    private static X509Certificate2 SelfSigned(string name)
    {
        using RSA rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    private X509Certificate2 OwnerPublic() => X509CertificateLoader.LoadCertificate(_owner.RawData);

    [Fact]
    public void TheSignedKeyEntityIsCanonicalAndOpensUnderThePinnedOwner_RoundTrip()
    {
        using ListKeyFile key = ListKeyFile.Create(List, 7);
        byte[] entity = KeyMessage.Sign(key, _owner);

        for (int i = 0; i < entity.Length; i++)
        {
            Assert.True(entity[i] != (byte)'\n' || (i > 0 && entity[i - 1] == (byte)'\r'), $"bare LF at offset {i}");
        }

        using X509Certificate2 pinned = OwnerPublic();
        SignedListKey opened = KeyMessage.Open(entity, _ => pinned, "test");
        using (opened.Key)
        {
            Assert.Equal(key.Key, opened.Key.Key);
            Assert.Equal(7, opened.Key.Epoch);
            Assert.Equal(_owner.RawData, opened.Signer.RawData);
        }

        // A mail client that saved the decrypted entity with LF line ends: read back canonical, it still verifies.
        byte[] lf = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(entity).Replace("\r\n", "\n", StringComparison.Ordinal));
        SignedListKey again = KeyMessage.Open(lf, _ => pinned, "test");
        again.Key.Dispose();
    }

    [Fact]
    public void OpensslVerifiesTheOwnersSignatureOverTheKeyPart()
    {
        using ListKeyFile key = ListKeyFile.Create(List, 3);
        string file = _temp.File("signed.eml");
        File.WriteAllBytes(file, KeyMessage.Sign(key, _owner));

        string verified = OpensslTool.Run("cms", "-verify", "-noverify", "-in", file);

        Assert.Contains("Epoch: 3", verified, StringComparison.Ordinal);
        Assert.Contains("Key: " + Convert.ToBase64String(key.Key), verified, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Epoch: 5", "Epoch: 6")] // the key file itself
    [InlineData("filename=", "filename=x")] // a header field of the signed part
    public void AChangedSignedPartIsRefusedAsNotVerifying(string original, string replacement)
    {
        using ListKeyFile key = ListKeyFile.Create(List, 5);
        string text = Encoding.ASCII.GetString(KeyMessage.Sign(key, _owner));
        Assert.Contains(original, text, StringComparison.Ordinal);
        byte[] altered = Encoding.ASCII.GetBytes(text.Replace(original, replacement, StringComparison.Ordinal));
        using X509Certificate2 pinned = OwnerPublic();

        KeyMessageRefusedException refused = Assert.Throws<KeyMessageRefusedException>(() => KeyMessage.Open(altered, _ => pinned, "test"));

        Assert.Contains("signature does not verify", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AKeyMessageSignedByAnotherCertificateIsRefusedNamingBoth()
    {
        using ListKeyFile key = ListKeyFile.Create(List, 2);
        using X509Certificate2 intruder = SelfSigned("intruder");
        byte[] entity = KeyMessage.Sign(key, intruder);
        using X509Certificate2 pinned = OwnerPublic();

        KeyMessageRefusedException refused = Assert.Throws<KeyMessageRefusedException>(() => KeyMessage.Open(entity, _ => pinned, "test"));

        Assert.StartsWith("test: signed by CN=intruder (SHA-256 ", refused.Message, StringComparison.Ordinal);
        Assert.Contains("not by the owner certificate pinned for " + List, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Content-Type: text/plain\r\n\r\nList: crypto@lists.example.org\r\n")]
    [InlineData("Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\nx\r\n--b--\r\n")]
    [InlineData("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n")]
    [InlineData("")]
    public void AnEntityThatIsNotAnSmimeMultipartSignedIsRefusedAsUnsigned(string entity)
    {
        KeyMessageRefusedException refused = Assert.Throws<KeyMessageRefusedException>(
            () => KeyMessage.Open(Encoding.ASCII.GetBytes(entity), _ => null, "test"));

        Assert.Equal("test: the key message is not signed (S/MIME multipart/signed): not from the list owner", refused.Message);
    }

    [Fact]
    public void ExtractEntityKeepsContentFieldsByteForByteCanonicalAndTheRestOutside()
    {
        byte[] message = Encoding.UTF8.GetBytes(
            "From: Alice <alice@example.org>\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\nMIME-Version: 1.0\n"
            + "Content-Type: text/plain;\n\tcharset=\"utf-8\"; format=flowed\nContent-Transfer-Encoding: 8bit\n\nline 1\nline 2\n");

        (byte[] entity, IReadOnlyList<Header> outer) = SmimeEntities.ExtractEntity(message);

        Assert.Equal(
            "Content-Type: text/plain;\r\n\tcharset=\"utf-8\"; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\nline 1\r\nline 2\r\n",
            Encoding.UTF8.GetString(entity));
        Assert.Equal(["From", "Subject"], outer.Select(h => h.Field));
        Assert.Equal(" =?utf-8?q?gr=C3=BC=C3=9Fe?=\n", Encoding.ASCII.GetString(outer[1].RawValue));
    }

    [Theory]
    [InlineData("hello\nworld\n", "hello\r\nworld\r\n")] // no header block: all of it is text
    [InlineData("Subject: hi\n\nbody\n", "body\r\n")] // no Content-Type: made explicit
    public void AnEntityWithoutContentTypeIsUtf8PlainText(string message, string body)
    {
        (byte[] entity, _) = SmimeEntities.ExtractEntity(Encoding.UTF8.GetBytes(message));

        Assert.Equal("Content-Type: text/plain; charset=utf-8\r\n\r\n" + body, Encoding.UTF8.GetString(entity));
    }

    [Theory]
    [InlineData(false, "smime-type=enveloped-data")]
    [InlineData(true, "smime-type=authEnveloped-data")]
    public void WriteEncryptedPutsTheCmsInAnSmimeEntityThatReadsBack(bool authEnveloped, string smimeType)
    {
        byte[] cms = RandomNumberGenerator.GetBytes(3000);

        byte[] message = SmimeEntities.WriteEncrypted([new Header("To", "bob@example.org")], cms, authEnveloped);

        string text = Encoding.ASCII.GetString(message);
        Assert.StartsWith("To: bob@example.org\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; " + smimeType, text, StringComparison.Ordinal);
        Assert.Equal(cms, SmimeEntities.ReadEncryptedCms(new MemoryStream(message)));
    }
}
