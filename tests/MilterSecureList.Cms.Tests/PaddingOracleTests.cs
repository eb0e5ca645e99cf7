using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
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
        (_, EnvelopedDataAsn ed) = SessionKeyRewrapper.Parse(der, CmsRewrapOptions.Default);
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
    public void TwoBadPaddingMessagesGetDifferentRandomKeys()
    {
        // The fallback key is fresh randomness, not a constant an attacker could recognise in the output.
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        (byte[] good, byte[] ek) = ListMessage(list, Plaintexts.MimeEntity());
        byte[] bad = Replace(good, ek, NonConformingCiphertext((RSA)list.Key));
        using ListKey listKey = list.ToListKey();
        byte[] cek1 = RecoverViaListKey(bad, listKey);
        byte[] cek2 = RecoverViaListKey(bad, listKey);
        Assert.Equal(32, cek1.Length);
        Assert.NotEqual(cek1, cek2);
        _ = m1;
    }

    [Fact]
    public void TamperedKeyAgreementLooksLikeAGoodMessage()
    {
        TestIdentity list = s_pki.Get("list-p256", "p256");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] plain = Plaintexts.MimeEntity("kari oracle");
        byte[] good = Peers.OpensslEncrypt(plain, [list], "-aes256");
        (_, EnvelopedDataAsn ed) = SessionKeyRewrapper.Parse(good, CmsRewrapOptions.Default);
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

    private static byte[] RecoverViaListKey(byte[] message, ListKey key)
    {
        (_, EnvelopedDataAsn ed) = SessionKeyRewrapper.Parse(message, CmsRewrapOptions.Default);
        return ContentKeyRecovery.Recover(ed.RecipientInfos[0], key, 32);
    }

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
