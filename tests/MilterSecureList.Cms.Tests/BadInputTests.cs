using System.Security.Cryptography;
using FsCheck;
using FsCheck.Fluent;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>Bad input gives a typed <see cref="CmsRewrapException"/> with a one-line message,
/// never another exception, a crash or a hang.</summary>
public class BadInputTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    private static readonly Lazy<(byte[] Der, byte[] Ber, byte[] Gcm, byte[] Ec)> s_samples = new(() =>
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        byte[] plain = Plaintexts.MimeEntity("bad input");
        return (Peers.OpensslEncrypt(plain, [list], "-aes256"),
                Peers.OpensslEncrypt(plain, [list], "-aes128", "-stream"),
                Peers.OpensslEncrypt(plain, [list], "-aes-128-gcm", "-keyopt", "rsa_padding_mode:oaep"),
                Peers.OpensslEncrypt(plain, [s_pki.Get("list-p256", "p256")], "-aes256", "-keyopt", "ecdh_kdf_md:sha256"));
    });

    private static ListKey[] ListKeys() => [s_pki.Get("list-rsa", "rsa").ToListKey(), s_pki.Get("list-p256", "p256").ToListKey()];

    private static CmsRecipient[] Members() => [CmsRecipient.FromCertificate(s_pki.Get("member1").Certificate)];

    private static CmsRewrapException AssertRejected(byte[] input, CmsRewrapFailure? expected = null, CmsRewrapOptions? options = null)
    {
        ListKey[] keys = ListKeys();
        try
        {
            var e = Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Rewrap(input, keys, Members(), options));
            if (expected is { } r)
            {
                Assert.Equal(r, e.Reason);
            }

            Assert.DoesNotContain('\n', e.Message);
            Assert.False(string.IsNullOrWhiteSpace(e.Message));
            return e;
        }
        finally
        {
            foreach (ListKey k in keys)
            {
                k.Dispose();
            }
        }
    }

    [Fact]
    public void EveryPrefixOfADerMessageIsMalformed()
    {
        byte[] der = s_samples.Value.Der;
        ListKey[] keys = ListKeys();
        CmsRecipient[] members = Members();
        for (int n = 0; n < der.Length; n++)
        {
            var e = Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Rewrap(der.AsMemory(0, n), keys, members));
            Assert.Equal(CmsRewrapFailure.Malformed, e.Reason);
            Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Inspect(der.AsMemory(0, n)));
        }
    }

    [Fact]
    public void EveryPrefixOfABerStreamMessageIsMalformed()
    {
        byte[] ber = s_samples.Value.Ber;
        Assert.Equal(0x80, ber[1]); // indefinite length: really BER
        ListKey[] keys = ListKeys();
        for (int n = 0; n < ber.Length; n++)
        {
            var e = Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Rewrap(ber.AsMemory(0, n), keys, Members()));
            Assert.Equal(CmsRewrapFailure.Malformed, e.Reason);
        }
    }

    [Fact]
    public void TrailingGarbageIsMalformed() =>
        AssertRejected([.. s_samples.Value.Der, 0x00], CmsRewrapFailure.Malformed);

    [Fact]
    public void EmptyAndRandomInputIsMalformed()
    {
        AssertRejected([], CmsRewrapFailure.Malformed);
        AssertRejected(RandomNumberGenerator.GetBytes(1000), CmsRewrapFailure.Malformed);
    }

    [Fact]
    public void SignedDataIsNotEnvelopedData()
    {
        TestIdentity signer = s_pki.Get("sender");
        using var dir = new TempDir();
        File.WriteAllText(dir.File("in"), "hello");
        Tool.MustRun("openssl", "cms", "-sign", "-nodetach", "-outform", "DER", "-in", dir.File("in"), "-out", dir.File("out"),
            "-signer", signer.CertPath, "-inkey", signer.KeyPath);
        byte[] signed = File.ReadAllBytes(dir.File("out"));
        AssertRejected(signed, CmsRewrapFailure.NotEnvelopedData);
        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(signed);
        Assert.False(info.IsEncrypted);
        Assert.Equal(Oids.SignedData, info.ContentType);
    }

    [Fact]
    public void MessageForAnotherKeyIsNotForThisListAndNamesTheFingerprint()
    {
        TestIdentity outsider = s_pki.Get("outsider");
        byte[] msg = Peers.OpensslEncrypt(Plaintexts.MimeEntity(), [outsider], "-aes256");
        CmsRewrapException e = AssertRejected(msg, CmsRewrapFailure.NotForThisList);
        Assert.Contains(s_pki.Get("list-rsa", "rsa").Certificate.GetCertHashString(HashAlgorithmName.SHA256), e.Message);

        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(msg);
        Assert.True(info.IsEnvelopedData);
        Assert.Single(info.Recipients);
        Assert.True(info.Recipients[0].Names(outsider.Certificate));
        Assert.Null(info.FindListKey(ListKeys()));
        Assert.False(info.HasDoubleWrap);
    }

    [Fact]
    public void UnknownContentCipherIsUnsupported()
    {
        // aes256-CBC (…1.42) → id-aes256-wrap (…1.45): same length, a key-wrap algorithm, no content cipher.
        byte[] msg = Patch(s_samples.Value.Der, Convert.FromHexString("06096086480165030401"), 0x2D);
        CmsRewrapException e = AssertRejected(msg, CmsRewrapFailure.UnsupportedAlgorithm);
        Assert.Contains("key length is not known", e.Message);
    }

    [Fact]
    public void UnknownKeyTransportIsUnsupported()
    {
        // rsaEncryption (…1.1.1) → md2WithRSAEncryption (…1.1.2)
        byte[] msg = Patch(s_samples.Value.Der, Convert.FromHexString("06092A864886F70D0101"), 0x02);
        AssertRejected(msg, CmsRewrapFailure.UnsupportedAlgorithm);
    }

    [Fact]
    public void OaepWithAnMgf1HashOutsideTheAllowListIsUnsupported()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        byte[] msg = Peers.OpensslEncrypt(Plaintexts.MimeEntity(), [list], "-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256");
        // MGF1 parameters: 06 09 2A864886F70D010108 30 0B 06 09 608648016503040201 → SHA3-256 (…2.8), not allowed
        byte[] msg2 = Patch(msg, Convert.FromHexString("06092A864886F70D010108300B06096086480165030402"), 0x08);
        CmsRewrapException e = AssertRejected(msg2, CmsRewrapFailure.UnsupportedAlgorithm);
        Assert.Contains("MGF1", e.Message);
    }

    [Fact]
    public void AbsurdLengthsAreMalformed()
    {
        AssertRejected(Convert.FromHexString("30847FFFFFFF06092A864886F70D010703"), CmsRewrapFailure.Malformed);
        AssertRejected(Convert.FromHexString("3089FFFFFFFFFFFFFFFFFF00"), CmsRewrapFailure.Malformed);
        AssertRejected(Convert.FromHexString("308006092A864886F70D010703A08430000000"), CmsRewrapFailure.Malformed);
    }

    [Fact]
    public void DeepNestingIsMalformedWithoutStackOverflow()
    {
        const int depth = 200_000;
        var ms = new MemoryStream();
        ms.Write(Convert.FromHexString("308006092A864886F70D010703A080"));
        for (int i = 0; i < depth; i++)
        {
            ms.Write([0x30, 0x80]);
        }

        for (int i = 0; i < depth + 2; i++)
        {
            ms.Write([0x00, 0x00]);
        }

        AssertRejected(ms.ToArray(), CmsRewrapFailure.Malformed);
        Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Inspect(ms.ToArray()));
    }

    [Fact]
    public void LimitsAreEnforced()
    {
        AssertRejected(s_samples.Value.Der, CmsRewrapFailure.LimitExceeded, new CmsRewrapOptions { MaxInputBytes = 100 });
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        byte[] two = Peers.OpensslEncrypt(Plaintexts.MimeEntity(), [list, s_pki.Get("sender")], "-aes256");
        AssertRejected(two, CmsRewrapFailure.LimitExceeded, new CmsRewrapOptions { MaxInputRecipientInfos = 1 });
    }

    [Fact]
    public void ListKeyWithTheWrongPrivateKeyIsRefused()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        Assert.Throws<ArgumentException>(() => new ListKey(list.Certificate, s_pki.Get("outsider").CloneKey()));
    }

    [Fact]
    public void MutatedMessagesOnlyEverFailWithCmsRewrapException_Property()
    {
        (byte[] der, byte[] ber, byte[] gcm, byte[] ec) = s_samples.Value;
        byte[][] samples = [der, ber, gcm, ec];
        ListKey[] keys = ListKeys();
        CmsRecipient[] members = Members();
        Arbitrary<(int Sample, int Seed)> arb = Gen.Choose(0, samples.Length - 1)
            .SelectMany(s => Gen.Choose(0, int.MaxValue).Select(seed => (s, seed)))
            .ToArbitrary();
        Property prop = Prop.ForAll(arb, t =>
        {
            byte[] input = Mutate(samples[t.Sample], new Random(t.Seed));
            try
            {
                SessionKeyRewrapper.Inspect(input);
                SessionKeyRewrapper.Rewrap(input, keys, members);
            }
            catch (CmsRewrapException e)
            {
                return !e.Message.Contains('\n');
            }

            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(400), prop);
    }

    [Fact]
    public void MutatedMessagesOnlyEverFailWithCmsRewrapExceptionOnTheMemberAndDoubleWrapPaths_Property()
    {
        // Member-side decryption and the double-wrap server parse more (content parameters, GCM, ori values).
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity listEc = s_pki.Get("list-p256", "p256");
        byte[] listKek = RandomNumberGenerator.GetBytes(32);
        (byte[] der, byte[] ber, byte[] gcm, byte[] ec) = s_samples.Value;
        byte[] dw = DoubleWrap.Encrypt(Plaintexts.MimeEntity(), "l@example.test", 1, listKek, list.Certificate);
        byte[][] samples = [der, ber, gcm, ec, dw];
        ListKey[] keys = ListKeys();
        CmsRecipient[] members = Members();
        Arbitrary<(int Sample, int Seed)> arb = Gen.Choose(0, samples.Length - 1)
            .SelectMany(s => Gen.Choose(0, int.MaxValue).Select(seed => (s, seed)))
            .ToArbitrary();
        Property prop = Prop.ForAll(arb, t =>
        {
            byte[] input = Mutate(samples[t.Sample], new Random(t.Seed));
            foreach (Action step in new Action[]
            {
                () => CmsDecryptor.Decrypt(input, list.Certificate, list.Key),
                () => CmsDecryptor.Decrypt(input, listEc.Certificate, listEc.Key),
                () => DoubleWrap.Decrypt(input, list.Certificate, list.Key, _ => listKek),
                () => DoubleWrap.Rewrap(input, keys, members),
            })
            {
                try
                {
                    step();
                }
                catch (CmsRewrapException)
                {
                }
            }

            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), prop);
    }

    /// <summary>Flip, overwrite, truncate, insert or delete a few bytes: keeps most structure so the parser goes deep.</summary>
    private static byte[] Mutate(byte[] source, Random rng)
    {
        var list = new List<byte>(source);
        int edits = rng.Next(1, 4);
        for (int i = 0; i < edits && list.Count > 0; i++)
        {
            int pos = rng.Next(list.Count);
            switch (rng.Next(5))
            {
                case 0: list[pos] ^= (byte)(1 << rng.Next(8)); break;
                case 1: list[pos] = (byte)rng.Next(256); break;
                case 2: list.RemoveRange(pos, list.Count - pos); break;
                case 3: list.Insert(pos, (byte)rng.Next(256)); break;
                default: list.RemoveAt(pos); break;
            }
        }

        return [.. list];
    }

    private static byte[] Patch(byte[] message, byte[] prefix, byte last)
    {
        int at = message.AsSpan().IndexOf(prefix);
        Assert.True(at >= 0, "pattern not found");
        byte[] copy = (byte[])message.Clone();
        copy[at + prefix.Length] = last;
        return copy;
    }
}
