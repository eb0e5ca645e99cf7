using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

public class CmsEncryptorTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryRecipientDecryptsWithOpenssl_RoundTrip(bool useGcm)
    {
        TestPki pki = TestPki.Shared;
        TestIdentity m1 = pki.Get("member1");
        TestIdentity m2 = pki.Get("member2");
        TestIdentity m3 = pki.Get("member3-ec", "p256");
        byte[] plain = Plaintexts.MimeEntity("list key distribution");

        byte[] ci = CmsEncryptor.Encrypt(plain, [CmsRecipient.FromCertificate(m1.Certificate), CmsRecipient.FromCertificate(m2.Certificate, true),
            CmsRecipient.FromCertificate(m3.Certificate)], useGcm);

        foreach (TestIdentity m in new[] { m1, m2, m3 })
        {
            Assert.Equal(plain, Peers.OpensslDecrypt(ci, m));
            Assert.Equal(plain, CmsDecryptor.Decrypt(ci, m.Certificate, m.Key));
        }

        if (!useGcm)
        {
            Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(ci, m1));
            Assert.Equal(2, SessionKeyRewrapper.Inspect(ci).Version); // a kari (v3) is present → 2
        }

        Assert.Null(Peers.OpensslDecrypt(ci, pki.Get("outsider")));
    }
}
