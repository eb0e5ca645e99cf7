using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>The padding oracle (docs/cms.md §8): a failed PKCS#1 v1.5 unwrap (bad padding), a validly padded key of the wrong length and a
/// ciphertext made for another key must be indistinguishable from a good message to whoever sends them: same return
/// path (no exception), same output shape, no message text; members simply cannot decrypt the result.</summary>
public class PaddingOracleTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    private static (byte[] Message, byte[] EncryptedKey) ListMessage(TestIdentity list, byte[] plain)
    {
        var cms = new EnvelopedCms(new ContentInfo(plain), new AlgorithmIdentifier(new Oid(Oids.Aes256Cbc)));
        cms.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(list.Certificate, RSAEncryptionPadding.Pkcs1));
        byte[] der = cms.Encode();
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(der).Enveloped;
        return (der, ed.RecipientInfos[0].KeyTrans!.Value.EncryptedKey.ToArray());
    }

    private static byte[] Replace(byte[] message, byte[] oldBytes, byte[] newBytes)
    {
        Assert.Equal(oldBytes.Length, newBytes.Length);
        int at = message.AsSpan().IndexOf(oldBytes);
        Assert.True(at >= 0);
        byte[] copy = (byte[])message.Clone();
        newBytes.CopyTo(copy, at);
        return copy;
    }

    public static TheoryData<string> BadKeyKinds => new() { "bad-padding", "wrong-length-cek", "wrong-cek", "other-rsa-key" };

    [Theory]
    [MemberData(nameof(BadKeyKinds))]
    public void BadListKeyCiphertextLooksLikeAGoodMessage(string kind)
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        TestIdentity outsider = s_pki.Get("outsider");
        byte[] plain = Plaintexts.MimeEntity("oracle");
        (byte[] good, byte[] ek) = ListMessage(list, plain);
        using RSA listPub = list.Certificate.GetRSAPublicKey()!;
        using RSA outsiderPub = outsider.Certificate.GetRSAPublicKey()!;
        byte[] badEk = kind switch
        {
            "bad-padding" => NonConformingCiphertext((RSA)list.Key),
            "wrong-length-cek" => listPub.Encrypt(RandomNumberGenerator.GetBytes(16), RSAEncryptionPadding.Pkcs1),
            "wrong-cek" => listPub.Encrypt(RandomNumberGenerator.GetBytes(32), RSAEncryptionPadding.Pkcs1),
            _ => outsiderPub.Encrypt(RandomNumberGenerator.GetBytes(32), RSAEncryptionPadding.Pkcs1),
        };
        byte[] bad = Replace(good, ek, badEk);
        using ListKey listKey = list.ToListKey();
        CmsRecipient[] members = [CmsRecipient.FromCertificate(m1.Certificate)];

        RewrapResult goodResult = SessionKeyRewrapper.Rewrap(good, [listKey], members);
        RewrapResult badResult = SessionKeyRewrapper.Rewrap(bad, [listKey], members); // must not throw

        Assert.Equal(goodResult.ContentInfo.Length, badResult.ContentInfo.Length);
        Assert.Equal(goodResult.Version, badResult.Version);
        Assert.Equal(goodResult.MembersWrapped, badResult.MembersWrapped);
        Assert.Equal(goodResult.KeptRecipientInfos, badResult.KeptRecipientInfos);
        Assert.Same(goodResult.MatchedKey, badResult.MatchedKey);
        Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(goodResult.ContentInfo, m1));
        Assert.NotEqual(plain, TryDecrypt(badResult.ContentInfo, m1));
    }

    [Fact]
    public void BadPaddingGivesADeterministicSyntheticKeyOfTheRightLengthThatDiffersPerCiphertext()
    {
        // Implicit rejection: the same forged ciphertext always yields the same key (a member comparing two copies of
        // one forgery learns nothing), a different forgery a different key, and the length is the content cipher's.
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        (byte[] good, byte[] ek) = ListMessage(list, Plaintexts.MimeEntity());
        byte[] bad1 = Replace(good, ek, NonConformingCiphertext((RSA)list.Key));
        byte[] bad2 = Replace(good, ek, NonConformingCiphertext((RSA)list.Key));
        using ListKey listKey = list.ToListKey();
        using ListKey sameKeyLoadedAgain = list.ToListKey();

        byte[] cek1 = RecoverViaListKey(bad1, listKey);
        Assert.Equal(32, cek1.Length);
        Assert.Equal(cek1, RecoverViaListKey(bad1, listKey));
        Assert.Equal(cek1, RecoverViaListKey(bad1, sameKeyLoadedAgain));
        Assert.NotEqual(cek1, RecoverViaListKey(bad2, listKey));
        Assert.Equal(16, RecoverViaListKey(bad1, listKey, 16).Length);
        Assert.Equal(24, RecoverViaListKey(bad1, listKey, 24).Length);

        // The synthetic key is PRF(KDK, "message", 8k)'s tail, KDK = HMAC-SHA256(SHA-256(d), C): recomputed here
        // from the private key with .NET's own HMAC as an independent check of the derivation.
        RSAParameters p = ((RSA)list.Key).ExportParameters(true);
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(bad1).Enveloped;
        byte[] c = ed.RecipientInfos[0].KeyTrans!.Value.EncryptedKey.ToArray();
        byte[] kdk = HMACSHA256.HashData(SHA256.HashData(p.D!), c);
        byte[] synthetic = new byte[256];
        for (int i = 0; i < 8; i++)
        {
            byte[] input = [0, (byte)i, .. "message"u8, 0x08, 0x00]; // counter, label, 2048 bits
            HMACSHA256.HashData(kdk, input).CopyTo(synthetic, 32 * i);
        }

        Assert.Equal(synthetic[^32..], cek1);
    }

    [Theory]
    [InlineData("first-octet")]
    [InlineData("block-type")]
    [InlineData("zero-in-padding")]
    [InlineData("no-separator")]
    [InlineData("key-too-short")]
    [InlineData("key-too-long")]
    [InlineData("good")]
    public void Pkcs1DecodingAcceptsOnlyAKeyOfTheExpectedLength(string kind)
    {
        byte[] kdk = RandomNumberGenerator.GetBytes(32);
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] em = EncodePkcs1(cek, 256);
        switch (kind)
        {
            case "first-octet": em[0] = 0x01; break;
            case "block-type": em[1] = 0x01; break;
            case "zero-in-padding": em[100] = 0x00; break;
            case "no-separator": em[256 - 33] = 0x17; break;
            case "key-too-short": em = EncodePkcs1(cek[..31], 256); break;
            case "key-too-long": em = EncodePkcs1([0x42, .. cek], 256); break;
        }

        byte[] key = new byte[32];
        KeyTransportDecoder.DecodePkcs1(em, kdk, key);
        byte[] synthetic = new byte[32];
        KeyTransportDecoder.SyntheticKey(kdk, 256, synthetic);
        Assert.Equal(kind == "good" ? cek : synthetic, key);
    }

    [Theory]
    [InlineData("first-octet")]
    [InlineData("label-hash")]
    [InlineData("non-zero-in-padding")]
    [InlineData("separator")]
    [InlineData("masked-seed")]
    [InlineData("key-too-short")]
    [InlineData("key-too-long")]
    [InlineData("good")]
    public void OaepDecodingAcceptsOnlyAKeyOfTheExpectedLength(string kind)
    {
        byte[] kdk = RandomNumberGenerator.GetBytes(32);
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] label = [];
        byte[] message = kind switch { "key-too-short" => cek[..31], "key-too-long" => [0x42, .. cek], _ => cek };
        byte[] em = EncodeOaepSha256(message, kind == "label-hash" ? "other"u8.ToArray() : label, 256, dbEdit: kind switch
        {
            "non-zero-in-padding" => d => d[40] = 0x01,
            "separator" => d => d[d.Length - message.Length - 1] = 0x02,
            _ => null,
        });
        switch (kind)
        {
            case "first-octet": em[0] = 0x01; break;
            case "masked-seed": em[7] ^= 0x80; break;
        }

        Assert.Equal(256, em.Length);
        byte[] key = new byte[32];
        KeyTransportDecoder.DecodeOaep(em, kdk, RsaesOaepParamsAsn.Decode(RsaesOaepParamsAsn.Sha256Encoded), key);
        byte[] synthetic = new byte[32];
        KeyTransportDecoder.SyntheticKey(kdk, 256, synthetic);
        Assert.Equal(kind == "good" ? cek : synthetic, key);
    }

    public static TheoryData<string> OaepHashes => new() { "SHA1", "SHA256", "SHA384", "SHA512" };

    [Theory]
    [MemberData(nameof(OaepHashes))]
    public void OaepDecodingRecoversWhatDotnetEncryptedWithEachHash(string hashName)
    {
        // The sender's side is .NET's (OpenSSL's) OAEP encoder; RSADP then our decoder, for every hash a sender may name.
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        using var rsa = new RsaDecryptionPrimitive((RSA)list.Key);
        using RSA pub = list.Certificate.GetRSAPublicKey()!;
        var name = new HashAlgorithmName(hashName);
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] c = pub.Encrypt(cek, RSAEncryptionPadding.CreateOaep(name));
        byte[] em = new byte[256];
        Assert.True(rsa.TryDecrypt(c, em));
        string oid = hashName switch { "SHA1" => Oids.Sha1, "SHA256" => Oids.Sha256, "SHA384" => Oids.Sha384, _ => Oids.Sha512 };
        var parameters = new RsaesOaepParamsAsn(oid, oid, []);
        byte[] key = new byte[32];
        KeyTransportDecoder.DecodeOaep(em, RandomNumberGenerator.GetBytes(32), parameters, key);
        Assert.Equal(cek, key);

        // One bit of the ciphertext changed: a synthetic key, no exception.
        c[^1] ^= 0x01;
        Assert.True(rsa.TryDecrypt(c, em));
        KeyTransportDecoder.DecodeOaep(em, RandomNumberGenerator.GetBytes(32), parameters, key);
        Assert.NotEqual(cek, key);
    }

    [Fact]
    public void OaepWithAKeyThatCannotFitIsRefusedAsUnsupported()
    {
        // 1024-bit modulus, SHA-512: k - 2h - 2 = 126 - 128 < 32 bytes; a public fact, refused before any secret is read.
        var parameters = new RsaesOaepParamsAsn(Oids.Sha512, Oids.Sha512, []);
        var e = Assert.Throws<CmsRewrapException>(() => KeyTransportDecoder.DecodeOaep(new byte[128], new byte[32], parameters, new byte[32]));
        Assert.Equal(CmsRewrapFailure.UnsupportedAlgorithm, e.Reason);
    }

    [Fact]
    public void BadOaepGivesTheSameSyntheticKeyAsBadPkcs1()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        using ListKey listKey = list.ToListKey();
        byte[] c = NonConformingCiphertext((RSA)list.Key);
        byte[] viaPkcs1 = RecoverKeyTrans(listKey, c, oaep: false);
        byte[] viaOaep = RecoverKeyTrans(listKey, c, oaep: true);
        Assert.Equal(viaPkcs1, viaOaep);
        using RSA pub = list.Certificate.GetRSAPublicKey()!;
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(cek, RecoverKeyTrans(listKey, pub.Encrypt(cek, RSAEncryptionPadding.OaepSHA1), oaep: true));
        Assert.Equal(cek, RecoverKeyTrans(listKey, pub.Encrypt(cek, RSAEncryptionPadding.Pkcs1), oaep: false));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void CiphertextThatIsNoRsaInputGetsASyntheticKey(bool tooLong)
    {
        // c >= n and a ciphertext longer than the modulus are refused by RSADP itself: still the same path and result shape.
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        using ListKey listKey = list.ToListKey();
        byte[] c = tooLong ? RandomNumberGenerator.GetBytes(257) : Enumerable.Repeat((byte)0xFF, 256).ToArray();
        byte[] key1 = RecoverKeyTrans(listKey, c, oaep: false);
        Assert.Equal(32, key1.Length);
        Assert.Equal(key1, RecoverKeyTrans(listKey, c, oaep: false));
    }

    [Fact]
    public void BouncyCastleFallbackComputesTheSameRsaOperationAsOpenssl()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        using var openssl = new RsaDecryptionPrimitive((RSA)list.Key);
        using var fallback = new RsaDecryptionPrimitive((RSA)list.Key, useOpenSsl: false);
        Assert.True(openssl.UsesOpenSsl);
        Assert.False(fallback.UsesOpenSsl);
        using RSA pub = list.Certificate.GetRSAPublicKey()!;
        foreach (byte[] c in new[] { pub.Encrypt(new byte[32], RSAEncryptionPadding.Pkcs1), NonConformingCiphertext((RSA)list.Key) })
        {
            byte[] a = new byte[256];
            byte[] b = new byte[256];
            Assert.True(openssl.TryDecrypt(c, a));
            Assert.True(fallback.TryDecrypt(c, b));
            Assert.Equal(a, b);
        }

        byte[] tooLarge = Enumerable.Repeat((byte)0xFF, 256).ToArray();
        Assert.False(openssl.TryDecrypt(tooLarge, new byte[256]));
        Assert.False(fallback.TryDecrypt(tooLarge, new byte[256]));
    }

    [Fact]
    public void TamperedKeyAgreementLooksLikeAGoodMessage()
    {
        TestIdentity list = s_pki.Get("list-p256", "p256");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] plain = Plaintexts.MimeEntity("kari oracle");
        byte[] good = Peers.OpensslEncrypt(plain, [list], "-aes256");
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(good).Enveloped;
        byte[] ek = ed.RecipientInfos[0].KeyAgree!.Value.RecipientEncryptedKeys[0].EncryptedKey.ToArray();
        byte[] tampered = (byte[])ek.Clone();
        tampered[5] ^= 0x40;
        byte[] bad = Replace(good, ek, tampered);
        using ListKey listKey = list.ToListKey();
        CmsRecipient[] members = [CmsRecipient.FromCertificate(m1.Certificate)];

        RewrapResult goodResult = SessionKeyRewrapper.Rewrap(good, [listKey], members);
        RewrapResult badResult = SessionKeyRewrapper.Rewrap(bad, [listKey], members);

        Assert.Equal(goodResult.ContentInfo.Length, badResult.ContentInfo.Length);
        Assert.Equal(plain, Peers.OpensslDecrypt(goodResult.ContentInfo, m1));
        Assert.NotEqual(plain, Peers.OpensslDecrypt(badResult.ContentInfo, m1));
    }

    private static byte[] RecoverViaListKey(byte[] message, ListKey key, int length = 32)
    {
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(message).Enveloped;
        return ContentKeyRecovery.Recover(ed.RecipientInfos[0], key, length);
    }

    /// <summary>Recover through a hand-built ktri (rsaEncryption or RSAES-OAEP with default parameters) carrying <paramref name="c"/>.</summary>
    private static byte[] RecoverKeyTrans(ListKey key, byte[] c, bool oaep)
    {
        var w = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteInteger(0);
            IssuerAndSerialNumberAsn.Encode(w, key.Certificate);
            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(oaep ? Oids.RsaesOaep : Oids.RsaEncryption);
                if (!oaep)
                {
                    w.WriteNull();
                }
            }

            w.WriteOctetString(c);
        }

        RecipientInfoAsn ri = RecipientInfoAsn.Decode(new System.Formats.Asn1.AsnReader(w.Encode(), System.Formats.Asn1.AsnEncodingRules.DER));
        return ContentKeyRecovery.Recover(ri, key, 32);
    }

    /// <summary>EM = 00 02 PS 00 M (RFC 8017 §7.2.1 step 2) with non-zero random PS.</summary>
    private static byte[] EncodePkcs1(byte[] message, int k)
    {
        byte[] em = new byte[k];
        em[1] = 0x02;
        for (int i = 2; i < k - message.Length - 1; i++)
        {
            em[i] = (byte)RandomNumberGenerator.GetInt32(1, 256);
        }

        message.CopyTo(em, k - message.Length);
        return em;
    }

    /// <summary>RSAES-OAEP-ENCODE with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1.1 step 2), written independently of the
    /// decoder under test; <paramref name="dbEdit"/> changes DB before it is masked.</summary>
    private static byte[] EncodeOaepSha256(byte[] message, byte[] label, int k, Action<byte[]>? dbEdit)
    {
        const int h = 32;
        byte[] db = new byte[k - h - 1];
        SHA256.HashData(label).CopyTo(db, 0);
        db[db.Length - message.Length - 1] = 0x01;
        message.CopyTo(db, db.Length - message.Length);
        dbEdit?.Invoke(db);
        byte[] seed = RandomNumberGenerator.GetBytes(h);
        byte[] maskedDb = Xor(db, Mgf1Sha256(seed, db.Length));
        byte[] maskedSeed = Xor(seed, Mgf1Sha256(maskedDb, h));
        return [0x00, .. maskedSeed, .. maskedDb];
    }

    private static byte[] Mgf1Sha256(byte[] seed, int length)
    {
        var mask = new List<byte>();
        for (int c = 0; mask.Count < length; c++)
        {
            mask.AddRange(SHA256.HashData([.. seed, (byte)(c >> 24), (byte)(c >> 16), (byte)(c >> 8), (byte)c]));
        }

        return mask.Take(length).ToArray();
    }

    private static byte[] Xor(byte[] a, byte[] b) => a.Zip(b, (x, y) => (byte)(x ^ y)).ToArray();

    /// <summary>A ciphertext whose decryption is not PKCS#1 v1.5 conforming (checked against the private key).</summary>
    private static byte[] NonConformingCiphertext(RSA privateKey)
    {
        while (true)
        {
            byte[] c = RandomNumberGenerator.GetBytes(privateKey.KeySize / 8);
            c[0] &= 0x7F; // below the modulus
            try
            {
                privateKey.Decrypt(c, RSAEncryptionPadding.Pkcs1);
            }
            catch (CryptographicException)
            {
                return c;
            }
        }
    }

    private static byte[]? TryDecrypt(byte[] der, TestIdentity me)
    {
        try
        {
            return Peers.EnvelopedCmsDecrypt(der, me);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
