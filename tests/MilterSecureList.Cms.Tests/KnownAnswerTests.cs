using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>FixedValue halves of the crypto pairs: messages produced once by OpenSSL (TestData/PROVENANCE.md).</summary>
public class KnownAnswerTests
{
    private static string Data(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", name);

    private static (X509Certificate2 Cert, AsymmetricAlgorithm Key) Load(string stem)
    {
        string certPem = File.ReadAllText(Data(stem + ".pem"));
        PemFields fields = PemEncoding.Find(certPem);
        X509Certificate2 cert = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(certPem[fields.Base64Data]));
        string keyPem = File.ReadAllText(Data(stem + ".key"));
        AsymmetricAlgorithm key;
        if (stem.EndsWith("-ec", StringComparison.Ordinal))
        {
            var ec = ECDiffieHellman.Create();
            ec.ImportFromPem(keyPem);
            key = ec;
        }
        else
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(keyPem);
            key = rsa;
        }

        return (cert, key);
    }

    public static TheoryData<string, string, string, bool> Vectors => new()
    {
        { "vector-rsa-v15-aes256cbc.der", "vectors-list-rsa", Oids.Aes256Cbc, false },
        { "vector-rsa-oaep256-aes128gcm.der", "vectors-list-rsa", Oids.Aes128Gcm, true },
        { "vector-ec-sha1kdf-aes256cbc-ber.der", "vectors-list-ec", Oids.Aes256Cbc, false },
        { "vector-ec-sha256kdf-aes256gcm.der", "vectors-list-ec", Oids.Aes256Gcm, true },
    };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void OpensslVectorDecryptsWithTheListKey_FixedValue(string vector, string listStem, string cipher, bool auth)
    {
        byte[] message = File.ReadAllBytes(Data(vector));
        byte[] plain = File.ReadAllBytes(Data("vector-plain.txt"));
        (X509Certificate2 cert, AsymmetricAlgorithm key) = Load(listStem);

        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(message);
        Assert.Equal(auth, info.IsAuthEnvelopedData);
        Assert.Equal(cipher, info.ContentEncryptionAlgorithm);
        Assert.True(info.Recipients.Single().Names(cert));

        Assert.Equal(plain, CmsDecryptor.Decrypt(message, cert, key));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void OpensslVectorRewrapsForMembers_RoundTrip(string vector, string listStem, string cipher, bool auth)
    {
        byte[] message = File.ReadAllBytes(Data(vector));
        byte[] plain = File.ReadAllBytes(Data("vector-plain.txt"));
        (X509Certificate2 cert, AsymmetricAlgorithm key) = Load(listStem);
        TestIdentity m1 = TestPki.Shared.Get("member1");
        TestIdentity m3 = TestPki.Shared.Get("member3-ec", "p256");
        using var listKey = new ListKey(cert, key);

        RewrapResult r = SessionKeyRewrapper.Rewrap(message, [listKey],
            [CmsRecipient.FromCertificate(m1.Certificate), CmsRecipient.FromCertificate(m3.Certificate)]);

        Assert.Equal(auth, r.IsAuthEnveloped);
        Assert.Equal(cipher, r.ContentEncryptionAlgorithm);
        Assert.Equal(plain, Peers.OpensslDecrypt(r.ContentInfo, m1));
        Assert.Equal(plain, Peers.OpensslDecrypt(r.ContentInfo, m3));
        Assert.Equal(plain, CmsDecryptor.Decrypt(r.ContentInfo, m3.Certificate, m3.Key));
    }

    [Fact]
    public void InspectReportsTheListIdentifier_FixedValue()
    {
        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(File.ReadAllBytes(Data("vector-rsa-v15-aes256cbc.der")));
        CmsRecipientIdentifier rid = info.Recipients.Single();
        Assert.Equal(0, info.Version);
        Assert.Equal("00A1B2C3", rid.SerialNumber);
        Assert.Equal("CN=MilterSecureList Vectors CA", rid.Issuer);
        Assert.Contains("serial=00A1B2C3", rid.ToString(), StringComparison.Ordinal);
    }
}
