using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>Messages produced at test time by <c>openssl cms -encrypt</c> to the list certificate, re-keyed by us, and
/// read back by each member with <c>openssl cms -decrypt</c> and (where it supports the form) .NET EnvelopedCms.</summary>
public class OpensslInteropTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    public static TheoryData<string, string, string[]> Senders => new()
    {
        // name, list key kind, extra openssl arguments
        { "3des-default", "rsa", [] },
        { "aes128-cbc", "rsa", ["-aes128"] },
        { "aes192-cbc", "rsa", ["-aes192"] },
        { "aes256-cbc", "rsa", ["-aes256"] },
        { "aes256-gcm", "rsa", ["-aes-256-gcm"] },
        { "aes128-gcm", "rsa", ["-aes-128-gcm"] },
        { "oaep-sha1", "rsa", ["-aes256", "-keyopt", "rsa_padding_mode:oaep"] },
        { "oaep-sha256", "rsa", ["-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"] },
        { "oaep-sha384", "rsa", ["-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha384"] },
        { "oaep-sha512", "rsa", ["-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha512"] },
        { "oaep-sha256-gcm", "rsa", ["-aes-256-gcm", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"] },
        { "keyid", "rsa", ["-aes256", "-keyid"] },
        { "stream-ber", "rsa", ["-aes256", "-stream"] },
        { "stream-ber-gcm", "rsa", ["-aes-128-gcm", "-stream"] },
        { "ecdh-p256-sha1kdf", "p256", ["-aes256"] },
        { "ecdh-p256-sha1kdf-aes128", "p256", ["-aes128"] },
        { "ecdh-p256-sha224kdf", "p256", ["-aes256", "-keyopt", "ecdh_kdf_md:sha224"] },
        { "ecdh-p256-sha256kdf", "p256", ["-aes256", "-keyopt", "ecdh_kdf_md:sha256"] },
        { "ecdh-p256-sha384kdf", "p256", ["-aes192", "-keyopt", "ecdh_kdf_md:sha384"] },
        { "ecdh-p256-sha512kdf-gcm", "p256", ["-aes-256-gcm", "-keyopt", "ecdh_kdf_md:sha512"] },
        { "ecdh-p256-cofactor", "p256", ["-aes256", "-keyopt", "ecdh_cofactor_mode:1"] },
        { "ecdh-p256-keyid", "p256", ["-aes256", "-keyid", "-keyopt", "ecdh_kdf_md:sha256"] },
        { "ecdh-p384-sha256kdf", "p384", ["-aes256", "-keyopt", "ecdh_kdf_md:sha256"] },
        { "ecdh-p521-sha512kdf", "p521", ["-aes256", "-keyopt", "ecdh_kdf_md:sha512"] },
        { "ecdh-p256-stream", "p256", ["-aes128", "-stream"] },
        // Forms real clients send that .NET's RSAEncryptionPadding cannot express: Java's default
        // OAEPWithSHA-256AndMGF1Padding (SHA-256 with MGF1-SHA-1), and OAEP with a label.
        { "oaep-sha256-mgf1-sha1", "rsa", ["-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha1"] },
        { "oaep-sha1-label", "rsa", ["-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_label:0102030405"] },
        { "oaep-sha256-label", "rsa", ["-aes-256-gcm", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_oaep_label:6c6973742d6c6162656c"] },
        { "oaep-sha512-mgf1-sha256-label", "rsa", ["-aes128", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha512", "-keyopt", "rsa_mgf1_md:sha256", "-keyopt", "rsa_oaep_label:00"] },
        // Key agreement for 3DES content: OpenSSL 1.1.1 and 3.0 then wrap with id-alg-CMS3DESwrap (RFC 3217).
        { "ecdh-p256-3des-wrap", "p256", ["-des3"] },
        { "ecdh-p256-3des-wrap-sha256kdf", "p256", ["-des3", "-keyopt", "ecdh_kdf_md:sha256"] },
        // Content ciphers beyond AES and 3DES: only the key length matters to the re-wrap.
        { "camellia-256-cbc", "rsa", ["-camellia-256-cbc"] },
        { "camellia-128-cbc-ecdh", "p256", ["-camellia-128-cbc"] },
        { "aes-256-ofb", "rsa", ["-aes-256-ofb"] },
        { "aes-128-cfb", "rsa", ["-aes-128-cfb"] },
        { "rc2-128", "rsa", ["-provider", "legacy", "-provider", "default", "-rc2-128"] },
        { "cast5-cbc", "rsa", ["-provider", "legacy", "-provider", "default", "-cast5-cbc"] },
        { "seed-cbc", "rsa", ["-provider", "legacy", "-provider", "default", "-seed-cbc"] },
    };

    [Theory]
    [MemberData(nameof(Senders))]
    public void OpensslSenderIsReadableByEveryMemberAfterRewrap_RoundTrip(string name, string listKind, string[] extra)
    {
        TestIdentity list = s_pki.Get("list-" + listKind, listKind);
        TestIdentity m1 = s_pki.Get("member1");
        TestIdentity m2 = s_pki.Get("member2");
        TestIdentity m3 = s_pki.Get("member3-ec", "p256");
        TestIdentity outsider = s_pki.Get("outsider");
        byte[] plain = Plaintexts.MimeEntity(name);

        byte[] input = Peers.OpensslEncrypt(plain, [list], extra);
        using ListKey listKey = list.ToListKey();
        CmsRecipient[] members =
        [
            CmsRecipient.FromCertificate(m1.Certificate),
            CmsRecipient.FromCertificate(m2.Certificate, preferOaep: true),
            CmsRecipient.FromCertificate(m3.Certificate),
        ];

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], members);

        Assert.Equal(3, result.MembersWrapped);
        Assert.Same(listKey, result.MatchedKey);
        Assert.Equal(0, result.KeptRecipientInfos);
        EnvelopeAssert.EncryptedContentUnchanged(input, result.ContentInfo);
        foreach (TestIdentity m in new[] { m1, m2, m3 })
        {
            byte[]? got = Peers.OpensslDecrypt(result.ContentInfo, m);
            Assert.True(got is not null, $"{name}: openssl could not decrypt for {m.Name}");
            Assert.Equal(plain, got);
        }

        if (!result.IsAuthEnveloped && result.ContentEncryptionAlgorithm is Oids.Aes128Cbc or Oids.Aes192Cbc or Oids.Aes256Cbc
            or Oids.DesEde3Cbc or Oids.Rc2Cbc)
        {
            // Independent oracle; EnvelopedCms reads RSA ktri (not kari, not AuthEnvelopedData, not Camellia/SEED/CAST5
            // or the AES feedback modes) on Linux.
            Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(result.ContentInfo, m1));
            Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(result.ContentInfo, m2));
        }

        Assert.Null(Peers.OpensslDecrypt(result.ContentInfo, outsider));
        Assert.Null(Peers.OpensslDecrypt(result.ContentInfo, list));
    }

    [Fact]
    public void OtherDirectRecipientsAreKeptVerbatimAndStillDecrypt()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity sender = s_pki.Get("sender");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] plain = Plaintexts.MimeEntity("kept");
        byte[] input = Peers.OpensslEncrypt(plain, [sender, list], "-aes256");
        using ListKey listKey = list.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(m1.Certificate)]);

        Assert.Equal(1, result.KeptRecipientInfos);
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, sender));
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m1));
        Assert.Null(Peers.OpensslDecrypt(result.ContentInfo, list));
    }

    [Fact]
    public void MembersWithRsa4096P384AndP521KeysDecrypt()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity[] members = [s_pki.Get("member-rsa4096", "rsa4096"), s_pki.Get("member-p384", "p384"), s_pki.Get("member-p521", "p521")];
        byte[] plain = Plaintexts.MimeEntity("other key sizes");
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-aes-256-gcm");
        using ListKey listKey = list.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey],
            members.Select(m => CmsRecipient.FromCertificate(m.Certificate, preferOaep: true)).ToArray());

        foreach (TestIdentity m in members)
        {
            Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m));
            Assert.Equal(plain, CmsDecryptor.Decrypt(result.ContentInfo, m.Certificate, m.Key));
        }
    }

    [Fact]
    public void RolloverAcceptsTheOldListCertificate()
    {
        TestIdentity oldList = s_pki.Get("list-rsa", "rsa");
        TestIdentity newList = s_pki.Get("list-rsa-new", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] plain = Plaintexts.MimeEntity("rollover");
        byte[] input = Peers.OpensslEncrypt(plain, [oldList], "-aes128");
        using ListKey k1 = newList.ToListKey();
        using ListKey k2 = oldList.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [k1, k2], [CmsRecipient.FromCertificate(m1.Certificate)]);

        Assert.Same(k2, result.MatchedKey);
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m1));
    }

    [Fact]
    public void SignedThenEncryptedSignatureStillVerifiesAfterRewrap()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity signer = s_pki.Get("sender");
        TestIdentity m1 = s_pki.Get("member1");
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("plain"), Plaintexts.MimeEntity("signed content"));
        Tool.MustRun("openssl", "cms", "-sign", "-md", "sha256", "-in", dir.File("plain"), "-out", dir.File("signed"),
            "-signer", signer.CertPath, "-inkey", signer.KeyPath);
        byte[] signedEntity = File.ReadAllBytes(dir.File("signed"));
        byte[] input = Peers.OpensslEncrypt(signedEntity, [list], "-aes-256-gcm");
        using ListKey listKey = list.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(m1.Certificate, preferOaep: true)]);

        byte[]? decrypted = Peers.OpensslDecrypt(result.ContentInfo, m1);
        Assert.Equal(signedEntity, decrypted);
        File.WriteAllBytes(dir.File("decrypted"), decrypted!);
        Tool.MustRun("openssl", "cms", "-verify", "-in", dir.File("decrypted"), "-CAfile", s_pki.Ca.CertPath,
            "-purpose", "any", "-out", dir.File("verified"));
        Assert.Equal(File.ReadAllBytes(dir.File("plain")), File.ReadAllBytes(dir.File("verified")));
    }

    [Fact]
    public void OpaqueSignedDataStillVerifiesAfterRewrap()
    {
        TestIdentity list = s_pki.Get("list-p256", "p256");
        TestIdentity signer = s_pki.Get("sender");
        TestIdentity m1 = s_pki.Get("member1");
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("plain"), Plaintexts.MimeEntity("opaque signed"));
        Tool.MustRun("openssl", "cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-md", "sha256", "-in", dir.File("plain"),
            "-out", dir.File("signed.der"), "-signer", signer.CertPath, "-inkey", signer.KeyPath);
        byte[] signedDer = File.ReadAllBytes(dir.File("signed.der"));
        byte[] input = Peers.OpensslEncrypt(signedDer, [list], "-aes256", "-keyopt", "ecdh_kdf_md:sha256");
        using ListKey listKey = list.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(m1.Certificate)]);

        byte[] decrypted = Peers.EnvelopedCmsDecrypt(result.ContentInfo, m1);
        Assert.Equal(signedDer, decrypted);
        var signed = new System.Security.Cryptography.Pkcs.SignedCms();
        signed.Decode(decrypted);
        signed.CheckSignature(verifySignatureOnly: true);
        File.WriteAllBytes(dir.File("decrypted.der"), decrypted);
        Tool.MustRun("openssl", "cms", "-verify", "-inform", "DER", "-in", dir.File("decrypted.der"), "-CAfile", s_pki.Ca.CertPath,
            "-purpose", "any", "-binary", "-out", dir.File("verified"));
        Assert.Equal(File.ReadAllBytes(dir.File("plain")), File.ReadAllBytes(dir.File("verified")));
    }

    [Fact]
    public void VersionIsRecomputedFromSkiInputToIasnOutput()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        TestIdentity m3 = s_pki.Get("member3-ec", "p256");
        byte[] input = Peers.OpensslEncrypt(Plaintexts.MimeEntity(), [list], "-aes256", "-keyid");
        Assert.Equal(2, SessionKeyRewrapper.Inspect(input).Version);
        using ListKey listKey = list.ToListKey();

        // RFC 5652 §6.1: only IASN ktri (v0), no originatorInfo, no attributes → 0; a kari (v3) → 2.
        Assert.Equal(0, SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(m1.Certificate)]).Version);
        Assert.Equal(2, SessionKeyRewrapper.Rewrap(input, [listKey],
            [CmsRecipient.FromCertificate(m1.Certificate), CmsRecipient.FromCertificate(m3.Certificate)]).Version);
    }
}
