using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Tests.Infrastructure;

#pragma warning disable CA5350 // SHA-1 here is what senders use to name keys, not a security use.

namespace MilterSecureList.Cms.Tests;

/// <summary>S/MIME forms real clients send that the plain openssl rows of <see cref="OpensslInteropTests"/> do not
/// cover: subjectKeyIdentifier recipients for a list certificate without the SKI extension (both ways senders compute
/// one), the 3DES key wrap of key agreement, old content ciphers with short keys, and list certificates whose
/// keyUsage forbids what the list key must do.</summary>
public class ClientFormTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    /// <summary>A list identity (RSA-2048) whose certificate has no subjectKeyIdentifier extension, and a twin
    /// certificate for the same key whose SKI extension holds <paramref name="twinSki"/>.</summary>
    private static (TestIdentity List, X509Certificate2 Twin) ListWithoutSki(X509SubjectKeyIdentifierHashAlgorithm twinSki)
    {
        RSA key = RSA.Create(2048);
        X509Certificate2 Issue(bool withSki)
        {
            var req = new CertificateRequest("CN=list without SKI, O=MilterSecureList Tests", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment, true));
            if (withSki)
            {
                req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, twinSki, false));
            }

            using X509Certificate2 c = req.Create(s_pki.Ca.Certificate.SubjectName,
                X509SignatureGenerator.CreateForRSA((RSA)s_pki.Ca.Key, RSASignaturePadding.Pkcs1),
                DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));
            return X509CertificateLoader.LoadCertificate(c.RawData);
        }

        X509Certificate2 cert = Issue(withSki: false);
        Assert.DoesNotContain(cert.Extensions.Cast<X509Extension>(), e => e is X509SubjectKeyIdentifierExtension);
        var list = new TestIdentity { Name = "list-no-ski", Email = "list@example.test", Certificate = cert, Key = key, CertPath = "", KeyPath = "" };
        return (list, Issue(withSki: true));
    }

    private static byte[] EncryptBySki(byte[] plain, X509Certificate2 recipient)
    {
        var cms = new EnvelopedCms(new ContentInfo(plain), new AlgorithmIdentifier(new Oid(Oids.Aes256Cbc)));
        cms.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(SubjectIdentifierType.SubjectKeyIdentifier, recipient));
        return cms.Encode();
    }

    private static void AssertMembersRead(byte[] plain, byte[] input, TestIdentity list)
    {
        TestIdentity m1 = s_pki.Get("member1");
        TestIdentity m3 = s_pki.Get("member3-ec", "p256");
        using ListKey listKey = list.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(m1.Certificate), CmsRecipient.FromCertificate(m3.Certificate)]);

        Assert.Same(listKey, result.MatchedKey);
        EnvelopeAssert.EncryptedContentUnchanged(input, result.ContentInfo);
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m1));
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m3));
    }

    [Fact]
    public void SkiRecipientAsWindowsWritesItForACertificateWithoutTheExtensionIsReKeyed()
    {
        // .NET's EnvelopedCms computes a missing SKI as Windows does: SHA-1 over the whole DER SubjectPublicKeyInfo.
        (TestIdentity list, _) = ListWithoutSki(X509SubjectKeyIdentifierHashAlgorithm.Sha1);
        byte[] plain = Plaintexts.MimeEntity("windows ski");
        byte[] input = EncryptBySki(plain, list.Certificate);
        string rid = SessionKeyRewrapper.Inspect(input).Recipients.Single().SubjectKeyIdentifier!;
        Assert.Equal(Convert.ToHexString(SHA1.HashData(list.Certificate.PublicKey.ExportSubjectPublicKeyInfo())), rid);

        AssertMembersRead(plain, input, list);
    }

    [Fact]
    public void SkiRecipientByRfc5280MethodOneForACertificateWithoutTheExtensionIsReKeyed()
    {
        // A sender that holds a certificate with the method (1) SKI (SHA-1 of the public key bits) for the same key.
        (TestIdentity list, X509Certificate2 twin) = ListWithoutSki(X509SubjectKeyIdentifierHashAlgorithm.Sha1);
        byte[] plain = Plaintexts.MimeEntity("method one ski");
        byte[] input = EncryptBySki(plain, twin);
        string rid = SessionKeyRewrapper.Inspect(input).Recipients.Single().SubjectKeyIdentifier!;
        Assert.Equal(Convert.ToHexString(SHA1.HashData(list.Certificate.PublicKey.EncodedKeyValue.RawData)), rid);

        AssertMembersRead(plain, input, list);
    }

    [Fact]
    public void SkiOfAnotherKeyIsNotForThisList()
    {
        (TestIdentity list, _) = ListWithoutSki(X509SubjectKeyIdentifierHashAlgorithm.Sha1);
        (TestIdentity other, _) = ListWithoutSki(X509SubjectKeyIdentifierHashAlgorithm.Sha1);
        byte[] input = EncryptBySki(Plaintexts.MimeEntity(), other.Certificate);
        using ListKey listKey = list.ToListKey();
        var e = Assert.Throws<CmsRewrapException>(() =>
            SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(s_pki.Get("member1").Certificate)]));
        Assert.Equal(CmsRewrapFailure.NotForThisList, e.Reason);
    }

    [Fact]
    public void KeyAgreementFor3DesContentUsesTheRfc3217WrapAndIsReKeyed()
    {
        TestIdentity list = s_pki.Get("list-p256", "p256");
        byte[] plain = Plaintexts.MimeEntity("3des kari");
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-des3");
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(input).Enveloped;
        KeyAgreeRecipientInfoAsn kari = ed.RecipientInfos[0].KeyAgree!.Value;
        var wrap = new System.Formats.Asn1.AsnReader(kari.KeyEncryptionAlgorithm.Parameters!.Value, System.Formats.Asn1.AsnEncodingRules.BER);
        Assert.Equal(Oids.Cms3DesWrap, wrap.ReadSequence().ReadObjectIdentifier());
        Assert.Equal(40, kari.RecipientEncryptedKeys[0].EncryptedKey.Length);

        AssertMembersRead(plain, input, list);

        // .NET's EnvelopedCms, an independent reader, opens an OAEP member's copy too.
        TestIdentity m2 = s_pki.Get("member2");
        using ListKey listKey = list.ToListKey();
        RewrapResult r = SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(m2.Certificate, preferOaep: true)]);
        Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(r.ContentInfo, m2));
    }

    [Theory]
    [InlineData("-des", 8)]
    [InlineData("-rc2-40", 5)]
    [InlineData("-rc2-64", 8)]
    [InlineData("-rc2-128", 16)]
    public void OldContentCiphersWithShortKeysAreReKeyedForRsaMembers(string cipher, int keyLength)
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        TestIdentity m2 = s_pki.Get("member2");
        byte[] plain = Plaintexts.MimeEntity("old cipher " + cipher);
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-provider", "legacy", "-provider", "default", cipher);
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(input).Enveloped;
        Assert.Equal(keyLength, ContentCiphers.KeyLengthOrThrow(ed));
        using ListKey listKey = list.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey],
            [CmsRecipient.FromCertificate(m1.Certificate), CmsRecipient.FromCertificate(m2.Certificate, preferOaep: true)]);

        EnvelopeAssert.EncryptedContentUnchanged(input, result.ContentInfo);
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m1));
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m2));
    }

    [Fact]
    public void ShortContentKeyForAnEcMemberIsAClearUnsupportedError()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        byte[] input = Peers.OpensslEncrypt(Plaintexts.MimeEntity(), [list], "-provider", "legacy", "-provider", "default", "-des");
        using ListKey listKey = list.ToListKey();
        CmsRecipient[] members = [CmsRecipient.FromCertificate(s_pki.Get("member1").Certificate), CmsRecipient.FromCertificate(s_pki.Get("member3-ec", "p256").Certificate)];
        var e = Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Rewrap(input, [listKey], members));
        Assert.Equal(CmsRewrapFailure.UnsupportedAlgorithm, e.Reason);
        Assert.Contains("8-byte content key", e.Message);
        Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Rewrap(input, [listKey], members,
            new CmsRewrapOptions { ParallelThreshold = 1 })); // the parallel path reports the same typed error
    }

    [Theory]
    [InlineData("rsa", "keyEncipherment")]
    [InlineData("p256", "keyAgreement")]
    public void ListCertificateWhoseKeyUsageForbidsTheListKeysJobIsRefusedSayingSo(string kind, string missing)
    {
        AsymmetricAlgorithm key = kind == "rsa" ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CertificateRequest req = key is RSA rsa
            ? new CertificateRequest("CN=signing-only list", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest("CN=signing-only list", (ECDsa)key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        using X509Certificate2 cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

        var e = Assert.Throws<CmsRewrapException>(() => new ListKey(cert, key));
        Assert.Equal(CmsRewrapFailure.InvalidArgument, e.Reason);
        Assert.Contains($"does not allow {missing}", e.Message);
        Assert.DoesNotContain("does not belong", e.Message);
        key.Dispose();
    }
}
