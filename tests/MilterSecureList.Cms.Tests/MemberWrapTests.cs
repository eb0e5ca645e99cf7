using System.Security.Cryptography;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>The per-member work of a re-wrap (docs/design.md, "Re-key: where the time goes"): the members' RSA
/// operation straight through OpenSSL, the loop that shares the members between threads, and entries written in place.</summary>
public class MemberWrapTests
{
    private const string ListId = "wrap@lists.example.test";
    private static readonly TestPki s_pki = TestPki.Shared;

    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public void MemberKeyEncryptsForItsPrivateKey(bool useOpenSsl, bool oaep)
    {
        using RSA rsa = RSA.Create(2048);
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        using RsaPublicKeyObject key = RsaPublicKeyObject.Import(rsa.ExportRSAPublicKey(), 256, useOpenSsl);
        Assert.Equal(useOpenSsl, key.UsesOpenSsl);
        byte[] first = new byte[256];
        byte[] second = new byte[256];
        key.Encrypt(cek, first, oaep);
        key.Encrypt(cek, second, oaep);

        RSAEncryptionPadding padding = oaep ? RSAEncryptionPadding.OaepSHA256 : RSAEncryptionPadding.Pkcs1;
        Assert.Equal(cek, rsa.Decrypt(first, padding));
        Assert.Equal(cek, rsa.Decrypt(second, padding));
        Assert.NotEqual(first, second); // randomised padding: never the same ciphertext twice
    }

    [Fact]
    public void OpenSslIsReachedDirectlyOnThisSystem() =>
        Assert.True(RsaPublicKeyObject.OpenSslAvailable, "libcrypto.so.3's RSA entry points were not found: every member wrap takes the slower fallback");

    [Fact]
    public void OneMemberKeyServesManyThreadsAtOnce()
    {
        using RSA rsa = RSA.Create(2048);
        using RsaPublicKeyObject key = RsaPublicKeyObject.Import(rsa.ExportRSAPublicKey(), 256);
        byte[][] keys = Enumerable.Range(0, 64).Select(_ => RandomNumberGenerator.GetBytes(32)).ToArray();
        byte[][] wrapped = new byte[keys.Length][];
        Parallel.For(0, keys.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            wrapped[i] = new byte[256];
            key.Encrypt(keys[i], wrapped[i], oaep: i % 2 == 1);
        });

        for (int i = 0; i < keys.Length; i++)
        {
            Assert.Equal(keys[i], rsa.Decrypt(wrapped[i], i % 2 == 1 ? RSAEncryptionPadding.OaepSHA256 : RSAEncryptionPadding.Pkcs1));
        }
    }

    [Theory]
    [InlineData("3003020100", 1)] // RSAPublicKey with a zero modulus and no exponent
    [InlineData("30820100", 256)] // truncated
    [InlineData("", 256)]
    public void BrokenMemberKeyIsRefused(string der, int modulusLength)
    {
        Assert.ThrowsAny<CryptographicException>(() => RsaPublicKeyObject.Import(Convert.FromHexString(der), modulusLength));
    }

    [Fact]
    public void KeyOfAnotherLengthThanTheCertificateSaysIsRefused()
    {
        using RSA rsa = RSA.Create(2048);
        Assert.Throws<CryptographicException>(() => RsaPublicKeyObject.Import(rsa.ExportRSAPublicKey(), 128));
    }

    [Fact]
    public void TooLongDataIsAnErrorNotATruncation()
    {
        using RSA rsa = RSA.Create(2048);
        using RsaPublicKeyObject key = RsaPublicKeyObject.Import(rsa.ExportRSAPublicKey(), 256);
        Assert.Throws<CryptographicException>(() => key.Encrypt(new byte[250], new byte[256], oaep: false));
        Assert.Throws<CryptographicException>(() => key.Encrypt(new byte[200], new byte[256], oaep: true));
        Assert.Throws<CryptographicException>(() => key.Encrypt(new byte[32], new byte[255], oaep: false));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 1)]
    [InlineData(3, 1)]
    [InlineData(1000, 1)]
    [InlineData(1000, 3)]
    [InlineData(7, 0)]
    public void EveryMemberIsWrappedOnceAndThePreworkRunsOnce(int count, int helpers)
    {
        int[] done = new int[count];
        int prework = 0;
        using (var loop = new MemberWrapLoop(count, helpers, () => Interlocked.Increment(ref prework)))
        {
            loop.Start();
            loop.Run(i => Interlocked.Increment(ref done[i]));
        }

        Assert.Equal(1, prework);
        Assert.All(done, d => Assert.Equal(1, d));
    }

    [Fact]
    public void AFailingMemberFailsTheRunAndNoThreadIsStillWrappingWhenDisposeReturns()
    {
        int calls = 0;
        int inside = 0;
        var loop = new MemberWrapLoop(1000, 2, null);
        loop.Start();
        var e = Assert.Throws<CryptographicException>(() => loop.Run(i =>
        {
            Interlocked.Increment(ref inside);
            Interlocked.Increment(ref calls);
            Thread.SpinWait(20_000); // each wrap takes a while, so a helper still at work would be seen below
            Interlocked.Decrement(ref inside);
            if (i == 10)
            {
                throw new CryptographicException("member 10");
            }
        }));
        loop.Dispose();

        Assert.Equal("member 10", e.Message);
        Assert.Equal(0, Volatile.Read(ref inside)); // the caller zeroes the key material right after this
        Assert.True(Volatile.Read(ref calls) < 1000, "the threads stop at their next claim after a failure");
    }

    [Fact]
    public void ARunAbandonedBeforeTheKeyNeverWrapsAndReleasesTheHelpers()
    {
        using var preworkStarted = new ManualResetEventSlim();
        var loop = new MemberWrapLoop(10, 2, preworkStarted.Set);
        loop.Start();
        preworkStarted.Wait(TimeSpan.FromSeconds(30)); // a helper is running and now waits for the key
        loop.Dispose(); // the private-key operation failed: the helpers give up and Dispose returns
    }

    // The in-place path and the sorted path, for every kind of member entry, in both modes, above the parallel threshold.
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void MixedMembersAreWrittenInPlaceOrSortedAndAllDecrypt(bool doubleWrap, bool sort)
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity[] identities = [s_pki.Get("member1"), s_pki.Get("member2"), s_pki.Get("member3-ec", "p256")];
        CmsRecipient[] distinct = [CmsRecipient.FromCertificate(identities[0].Certificate),
            CmsRecipient.FromCertificate(identities[1].Certificate, preferOaep: true), CmsRecipient.FromCertificate(identities[2].Certificate)];
        CmsRecipient[] members = Enumerable.Range(0, 90).Select(i => distinct[i % 3]).ToArray();
        byte[] plain = Plaintexts.MimeEntity("in place");
        byte[] listKeyBytes = RandomNumberGenerator.GetBytes(32);
        byte[] input = doubleWrap
            ? DoubleWrap.Encrypt(plain, ListId, 1, listKeyBytes, list.Certificate)
            : Peers.OpensslEncrypt(plain, [list], "-aes256");
        using ListKey listKey = list.ToListKey();
        var options = new CmsRewrapOptions { SortRecipientInfos = sort, ShareKeyAgreement = false };

        RewrapResult result = doubleWrap
            ? DoubleWrap.Rewrap(input, [listKey], members, options)
            : SessionKeyRewrapper.Rewrap(input, [listKey], members, options);

        Assert.Equal(90, SessionKeyRewrapper.Inspect(result.ContentInfo).Recipients.Count);
        EnvelopeAssert.EncryptedContentUnchanged(input, result.ContentInfo);
        foreach (TestIdentity m in identities)
        {
            byte[] opened = doubleWrap
                ? DoubleWrap.Decrypt(result.ContentInfo, m.Certificate, m.Key, id => id == (ListId, 1) ? listKeyBytes : null)
                : CmsDecryptor.Decrypt(result.ContentInfo, m.Certificate, m.Key);
            Assert.Equal(plain, opened);
        }

        if (!sort)
        {
            CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(result.ContentInfo);
            for (int i = 0; i < members.Length; i++)
            {
                Assert.True(info.Recipients[i].Names(members[i].Certificate), $"entry {i} is not in member order");
            }
        }
    }
}
