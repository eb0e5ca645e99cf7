using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

public class CertificateEdgeTests
{
    [Fact]
    public void SerialWithTheHighBitSetIsWrittenAsInTheCertificateAndDecrypts()
    {
        TestPki pki = TestPki.Shared;
        using RSA key = RSA.Create(2048);
        var req = new CertificateRequest("CN=odd serial", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        // High bit set: the DER INTEGER needs a leading 0x00 (a classic source of byte-vs-integer comparison bugs).
        byte[] serial = [0x80, 0x12, 0x34];
        using X509Certificate2 issued = req.Create(pki.Ca.Certificate.SubjectName,
            X509SignatureGenerator.CreateForRSA((RSA)pki.Ca.Key, RSASignaturePadding.Pkcs1), DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), serial);
        X509Certificate2 cert = X509CertificateLoader.LoadCertificate(issued.RawData);
        Assert.Equal("00801234", Convert.ToHexString(cert.SerialNumberBytes.Span));
        TestIdentity list = pki.Get("list-rsa", "rsa");
        byte[] plain = Plaintexts.MimeEntity("odd serial");
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-aes256");
        using ListKey lk = list.ToListKey();

        RewrapResult r = SessionKeyRewrapper.Rewrap(input, [lk], [CmsRecipient.FromCertificate(cert)]);

        CmsRecipientIdentifier rid = SessionKeyRewrapper.Inspect(r.ContentInfo).Recipients.Single();
        Assert.Equal("00801234", rid.SerialNumber);
        Assert.True(rid.Names(cert));
        Assert.Equal(plain, CmsDecryptor.Decrypt(r.ContentInfo, cert, key));
        using var dir = new TempDir();
        File.WriteAllText(dir.File("c.pem"), cert.ExportCertificatePem());
        File.WriteAllText(dir.File("k.pem"), key.ExportPkcs8PrivateKeyPem());
        Assert.Equal(plain, Peers.OpensslDecrypt(r.ContentInfo, new TestIdentity
        {
            Name = "odd", Email = "odd@example.test", Certificate = cert, Key = key, CertPath = dir.File("c.pem"), KeyPath = dir.File("k.pem"),
        }));
    }

    [Fact]
    public void MemberCertificateWithoutKeyEnciphermentIsRefused()
    {
        using RSA key = RSA.Create(2048);
        var req = new CertificateRequest("CN=signing only", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        using X509Certificate2 cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var e = Assert.Throws<CmsRewrapException>(() => CmsRecipient.FromCertificate(cert));
        Assert.Equal(CmsRewrapFailure.InvalidArgument, e.Reason);
        Assert.Contains("keyEncipherment", e.Message);
    }
}
