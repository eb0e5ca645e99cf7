using System.Formats.Asn1;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>Double-wrap, CMS side: sender → server → members, and the properties the scheme promises.</summary>
public class DoubleWrapTests
{
    private const string ListId = "crypto@lists.example.test";
    private static readonly TestPki s_pki = TestPki.Shared;

    private static readonly byte[] s_epoch1 = RandomNumberGenerator.GetBytes(32);
    private static readonly byte[] s_epoch2 = RandomNumberGenerator.GetBytes(32);

    private static byte[]? Lookup((string ListId, long Epoch) id) =>
        id.ListId != ListId ? null : id.Epoch switch { 1 => s_epoch1, 2 => s_epoch2, _ => null };

    private static (TestIdentity Member, bool Oaep)[] Members =>
    [
        (s_pki.Get("member1"), false),
        (s_pki.Get("member2"), true),
        (s_pki.Get("member3-ec", "p256"), false),
    ];

    private static RewrapResult ServerRewrap(byte[] message, TestIdentity server, IEnumerable<(TestIdentity Member, bool Oaep)> members)
    {
        using ListKey serverKey = server.ToListKey();
        return DoubleWrap.Rewrap(message, [serverKey], members.Select(m => CmsRecipient.FromCertificate(m.Member.Certificate, m.Oaep)).ToArray());
    }

    [Theory]
    [InlineData(true, "server-rsa", "rsa")]
    [InlineData(false, "server-rsa", "rsa")]
    [InlineData(true, "server-ec", "p256")]
    public void EveryMemberDecrypts_RoundTrip(bool useGcm, string serverName, string serverKind)
    {
        TestIdentity server = s_pki.Get(serverName, serverKind);
        byte[] plain = Plaintexts.MimeEntity("double wrapped");
        byte[] sent = DoubleWrap.Encrypt(plain, ListId, 1, s_epoch1, server.Certificate, useGcm);

        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(sent);
        Assert.True(info.HasDoubleWrap);
        Assert.Equal(useGcm, info.IsAuthEnvelopedData);
        using (ListKey sk = server.ToListKey())
        {
            Assert.Same(sk, info.FindListKey([sk]));
        }

        RewrapResult result = ServerRewrap(sent, server, Members);

        Assert.Equal(3, result.MembersWrapped);
        Assert.Equal(useGcm ? 0 : 3, result.Version); // RFC 5652 §6.1: ori → 3; AuthEnvelopedData → 0
        EnvelopeAssert.EncryptedContentUnchanged(sent, result.ContentInfo);
        foreach ((TestIdentity m, _) in Members)
        {
            Assert.Equal(plain, DoubleWrap.Decrypt(result.ContentInfo, m.Certificate, m.Key, Lookup));
        }
    }

    [Fact]
    public void ServerKeyAloneCannotRecoverTheContent()
    {
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        byte[] plain = Plaintexts.MimeEntity("server must not read");
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] sent = DoubleWrap.Encrypt(plain, ListId, 1, s_epoch1, server.Certificate, useGcm: true, cek);

        // 1. What the server can unwrap is the RFC 5649 blob, not the content key, and the blob opens nothing.
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(sent).Enveloped;
        DoubleWrapRecipientInfoAsn dw = DoubleWrapRecipientInfoAsn.Decode(ed.RecipientInfos[0].OriValue);
        using ListKey serverKey = server.ToListKey();
        byte[] blob = ContentKeyRecovery.Recover(dw.Outer, serverKey, 40);
        Assert.Equal(DoubleWrap.WrapInner(s_epoch1, cek), blob); // the server really did unwrap its layer
        Assert.Equal(-1, blob.AsSpan().IndexOf(cek));
        for (int off = 0; off + 32 <= blob.Length; off += 8)
        {
            byte[] candidate = blob.AsSpan(off, 32).ToArray();
            var e = Assert.Throws<CmsRewrapException>(() => ContentCipher.Decrypt(ed, candidate));
            Assert.Equal(CmsRewrapFailure.DecryptionFailed, e.Reason);
        }

        // 2. The member tool with the server's key but no list key fails; so does openssl.
        var noKey = Assert.Throws<CmsRewrapException>(() => DoubleWrap.Decrypt(sent, server.Certificate, server.Key, _ => null));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, noKey.Reason);
        var guess = Assert.Throws<CmsRewrapException>(() =>
            DoubleWrap.Decrypt(sent, server.Certificate, server.Key, _ => RandomNumberGenerator.GetBytes(32)));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, guess.Reason);
        Assert.Null(Peers.OpensslDecrypt(sent, server));

        // 3. The re-wrapped output has nothing for the server at all.
        RewrapResult result = ServerRewrap(sent, server, Members);
        var notMine = Assert.Throws<CmsRewrapException>(() => DoubleWrap.Decrypt(result.ContentInfo, server.Certificate, server.Key, Lookup));
        Assert.Equal(CmsRewrapFailure.NotForThisList, notMine.Reason);
    }

    [Fact]
    public void WrongEpochKeyFailsTheKeyWrapIntegrityCheck()
    {
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] sent = DoubleWrap.Encrypt(Plaintexts.MimeEntity(), ListId, 2, s_epoch2, server.Certificate);
        RewrapResult result = ServerRewrap(sent, server, Members);

        // A member (or a removed member) holding only the epoch-1 key cannot open an epoch-2 post.
        var e = Assert.Throws<CmsRewrapException>(() =>
            DoubleWrap.Decrypt(result.ContentInfo, m1.Certificate, m1.Key, id => id.Epoch == 2 ? s_epoch1 : null));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, e.Reason);
        Assert.Contains("epoch 2", e.Message);
        var missing = Assert.Throws<CmsRewrapException>(() => DoubleWrap.Decrypt(result.ContentInfo, m1.Certificate, m1.Key, _ => null));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, missing.Reason);
    }

    [Fact]
    public void TamperedGcmContentIsDetected()
    {
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] sent = DoubleWrap.Encrypt(Plaintexts.MimeEntity("integrity"), ListId, 1, s_epoch1, server.Certificate);
        RewrapResult result = ServerRewrap(sent, server, Members);
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(result.ContentInfo).Enveloped;
        byte[] ciphertext = ed.EncryptedContentInfo.ReadEncryptedContent();
        byte[] tampered = (byte[])result.ContentInfo.Clone();
        int at = tampered.AsSpan().IndexOf(ciphertext);
        tampered[at + 10] ^= 0x01;

        var e = Assert.Throws<CmsRewrapException>(() => DoubleWrap.Decrypt(tampered, m1.Certificate, m1.Key, Lookup));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, e.Reason);
    }

    [Fact]
    public void RemovedMemberGetsNoCopyAndCannotOpenACurrentMembersCopy()
    {
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        TestIdentity removed = s_pki.Get("removed-member");
        byte[] sent = DoubleWrap.Encrypt(Plaintexts.MimeEntity("after removal"), ListId, 1, s_epoch1, server.Certificate);
        RewrapResult result = ServerRewrap(sent, server, Members); // 'removed' is not among the members

        // Even with the (unrotated) list key it kept, there is no outer layer it can remove.
        var e = Assert.Throws<CmsRewrapException>(() => DoubleWrap.Decrypt(result.ContentInfo, removed.Certificate, removed.Key, Lookup));
        Assert.Equal(CmsRewrapFailure.NotForThisList, e.Reason);
        Assert.Null(Peers.OpensslDecrypt(result.ContentInfo, removed));
    }

    [Fact]
    public void ServerOuterUnwrapFailureIsNotAnOracle()
    {
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] sent = DoubleWrap.Encrypt(Plaintexts.MimeEntity(), ListId, 1, s_epoch1, server.Certificate);
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(sent).Enveloped;
        byte[] ek = DoubleWrapRecipientInfoAsn.Decode(ed.RecipientInfos[0].OriValue).Outer.KeyTrans!.Value.EncryptedKey.ToArray();
        byte[] bad = (byte[])sent.Clone();
        bad[bad.AsSpan().IndexOf(ek) + 100] ^= 0x55;

        RewrapResult good = ServerRewrap(sent, server, Members);
        RewrapResult worse = ServerRewrap(bad, server, Members); // no exception
        Assert.Equal(good.ContentInfo.Length, worse.ContentInfo.Length);
        Assert.Throws<CmsRewrapException>(() => DoubleWrap.Decrypt(worse.ContentInfo, m1.Certificate, m1.Key, Lookup));
    }

    [Fact]
    public void MessageWithoutDoubleWrapForTheServerIsNotForThisList()
    {
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        byte[] ordinary = Peers.OpensslEncrypt(Plaintexts.MimeEntity(), [server], "-aes256");
        using ListKey sk = server.ToListKey();
        var e = Assert.Throws<CmsRewrapException>(() => DoubleWrap.Rewrap(ordinary, [sk], [CmsRecipient.FromCertificate(s_pki.Get("member1").Certificate)]));
        Assert.Equal(CmsRewrapFailure.NotForThisList, e.Reason);
        Assert.False(SessionKeyRewrapper.Inspect(ordinary).HasDoubleWrap);
    }

    [Fact]
    public void SenderGcmContentEncodingIsReadByOpenssl_FixedValue()
    {
        // Our AuthEnvelopedData content encoding, checked by an independent reader: replace the ori by a kekri
        // carrying the same content key (RFC 3394 id-aes256-wrap, which openssl 3.0 reads with -secretkey).
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        byte[] plain = Plaintexts.MimeEntity("gcm encoding");
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] kek = RandomNumberGenerator.GetBytes(32);
        byte[] kekId = [1, 2, 3, 4];
        byte[] sent = DoubleWrap.Encrypt(plain, ListId, 1, s_epoch1, server.Certificate, useGcm: true, cek);
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(sent).Enveloped;

        var kekri = new AsnWriter(AsnEncodingRules.DER);
        using (kekri.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 2, true)))
        {
            kekri.WriteInteger(4);
            using (kekri.PushSequence())
            {
                kekri.WriteOctetString(kekId);
            }

            using (kekri.PushSequence())
            {
                kekri.WriteObjectIdentifier(Oids.Aes256Wrap);
            }

            kekri.WriteOctetString(KeyWrap.WrapAes(kek, cek));
        }

        byte[] asKekri = EnvelopeAssembler.Assemble(Oids.AuthEnvelopedData, 0, ed, [kekri.Encode()], []);
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), asKekri);
        Tool.MustRun("openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", dir.File("in"), "-out", dir.File("out"),
            "-secretkey", Convert.ToHexString(kek), "-secretkeyid", Convert.ToHexString(kekId));
        Assert.Equal(plain, File.ReadAllBytes(dir.File("out")));
    }
}

/// <summary>The member tool's ordinary S/MIME path, against real senders and our re-key output.</summary>
public class CmsDecryptorTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    [Theory]
    [InlineData("member1", "rsa")]
    [InlineData("member3-ec", "p256")]
    public void DecryptsOpensslSenders_RoundTrip(string name, string kind)
    {
        TestIdentity me = s_pki.Get(name, kind);
        byte[] plain = Plaintexts.MimeEntity("ordinary");
        string[][] variants = kind == "rsa"
            ? [[], ["-aes128"], ["-aes256", "-stream"], ["-aes-256-gcm"], ["-aes-128-gcm", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"], ["-aes256", "-keyid"]]
            : [["-aes256"], ["-aes-256-gcm", "-keyopt", "ecdh_kdf_md:sha256"], ["-aes128", "-keyid"]];
        foreach (string[] v in variants)
        {
            byte[] msg = Peers.OpensslEncrypt(plain, [me], v);
            Assert.Equal(plain, CmsDecryptor.Decrypt(msg, me.Certificate, me.Key));
            Assert.Equal(plain, DoubleWrap.Decrypt(msg, me.Certificate, me.Key, _ => null)); // falls back to ordinary
        }
    }

    [Fact]
    public void DecryptsRekeyOutput_AndRefusesOthers()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity m3 = s_pki.Get("member3-ec", "p256");
        TestIdentity outsider = s_pki.Get("outsider");
        byte[] plain = Plaintexts.MimeEntity("rekeyed");
        byte[] msg = Peers.OpensslEncrypt(plain, [list], "-aes-128-gcm");
        using ListKey lk = list.ToListKey();
        RewrapResult r = SessionKeyRewrapper.Rewrap(msg, [lk], [CmsRecipient.FromCertificate(m3.Certificate)]);
        Assert.Equal(plain, CmsDecryptor.Decrypt(r.ContentInfo, m3.Certificate, m3.Key));
        var e = Assert.Throws<CmsRewrapException>(() => CmsDecryptor.Decrypt(r.ContentInfo, outsider.Certificate, outsider.Key));
        Assert.Equal(CmsRewrapFailure.NotForThisList, e.Reason);
    }
}
