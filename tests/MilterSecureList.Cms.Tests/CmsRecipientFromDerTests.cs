using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>A member built from its certificate's bytes (no X.509 or key object kept, docs/design.md "Lists of 100,000
/// members") wraps exactly as one built from a parsed certificate, and its key objects come from a bounded cache.</summary>
public class CmsRecipientFromDerTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    public static TheoryData<string, string, bool> Members => new()
    {
        { "member1", "rsa", false },
        { "member1", "rsa", true },
        { "member3-ec", "p256", false },
        { "member-p384", "p384", false },
    };

    [Theory]
    [MemberData(nameof(Members))]
    public void FromDerReadsWhatTheParsedCertificateSays(string name, string kind, bool oaep)
    {
        X509Certificate2 cert = s_pki.Get(name, kind).Certificate;

        CmsRecipient recipient = CmsRecipient.FromDer(cert.RawData, oaep);

        var w = new AsnWriter(AsnEncodingRules.DER);
        IssuerAndSerialNumberAsn.Encode(w, cert);
        Assert.Equal(w.Encode(), recipient.EncodedIssuerAndSerialNumber.ToArray());
        Assert.Equal(cert.Subject, recipient.Subject);
        if (kind == "rsa")
        {
            using RSA rsa = cert.GetRSAPublicKey()!;
            Assert.Equal(oaep ? CmsKeyTransport.RsaOaepSha256 : CmsKeyTransport.RsaPkcs1, recipient.KeyTransport);
            Assert.Equal(rsa.ExportRSAPublicKey(), recipient.PublicKey.ToArray());
            Assert.Equal((rsa.KeySize + 7) / 8, recipient.KeySizeBytes);
            Assert.Equal(CmsRecipient.FromCertificate(cert, oaep).KeyTransPrefix, recipient.KeyTransPrefix);
        }
        else
        {
            using ECDiffieHellman ec = cert.GetECDiffieHellmanPublicKey()!;
            ECParameters p = ec.ExportParameters(false);
            Assert.Equal(CmsKeyTransport.EcdhStdSha256Aes256Wrap, recipient.KeyTransport);
            Assert.Equal([0x04, .. p.Q.X!, .. p.Q.Y!], recipient.PublicKey.ToArray());
            Assert.Equal(p.Curve.Oid.Value, recipient.CurveOid);
        }
    }

    [Fact]
    public void MembersBuiltFromDerReadTheRekeyedMessage_RoundTrip()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity[] members = [s_pki.Get("member1"), s_pki.Get("member2"), s_pki.Get("member3-ec", "p256"), s_pki.Get("member-p384", "p384")];
        byte[] plain = Plaintexts.MimeEntity("from der");
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-aes256");
        using ListKey listKey = list.ToListKey();

        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey],
            members.Select((m, i) => CmsRecipient.FromDer(m.Certificate.RawData, preferOaep: i == 1)).ToArray());

        foreach (TestIdentity m in members)
        {
            Assert.Equal(plain, CmsDecryptor.Decrypt(result.ContentInfo, m.Certificate, m.Key));
            Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m));
        }
    }

    [Fact]
    public void EveryPrefixOfACertificateIsRefusedAsTheOperatorsInput()
    {
        byte[] der = s_pki.Get("member1").Certificate.RawData;
        for (int length = 0; length < der.Length; length++)
        {
            var e = Assert.Throws<CmsRewrapException>(() => CmsRecipient.FromDer(der.AsMemory(0, length)));
            Assert.Equal(CmsRewrapFailure.InvalidArgument, e.Reason);
        }

        Assert.Equal(CmsRewrapFailure.InvalidArgument,
            Assert.Throws<CmsRewrapException>(() => CmsRecipient.FromDer(RandomNumberGenerator.GetBytes(500))).Reason);
        Assert.Equal(CmsRewrapFailure.InvalidArgument,
            Assert.Throws<CmsRewrapException>(() => CmsRecipient.FromDer(der.Append((byte)0x00).ToArray())).Reason);
    }

    [Fact]
    public void AKeyUsageWithoutKeyEnciphermentIsRefusedFromDer()
    {
        using RSA key = RSA.Create(2048);
        var req = new CertificateRequest("CN=signing only", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        using X509Certificate2 cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

        var e = Assert.Throws<CmsRewrapException>(() => CmsRecipient.FromDer(cert.RawData));

        Assert.Equal(CmsRewrapFailure.InvalidArgument, e.Reason);
        Assert.Contains("keyEncipherment", e.Message);
        Assert.Contains("CN=signing only", e.Message);
    }

    [Fact]
    public void TheCacheKeepsRecentKeyObjectsWithinItsBudget()
    {
        var cache = new PublicKeyObjectCache(budgetBytes: 3 * 100);
        var owners = Enumerable.Range(0, 5).Select(_ => new object()).ToArray();
        var made = new List<TrackedKey>();
        IDisposable Import(object _)
        {
            var key = new TrackedKey();
            made.Add(key);
            return key;
        }

        foreach (object owner in owners)
        {
            cache.Rent(owner, Import, 100).Dispose();
        }

        Assert.Equal(3, cache.Count);
        Assert.Equal([true, true, false, false, false], made.Select(k => k.Disposed));

        // owners[2] is the least recently used now; touching it makes owners[3] the next to go.
        cache.Rent(owners[2], Import, 100).Dispose();
        cache.Rent(owners[0], Import, 100).Dispose();
        Assert.Equal(6, made.Count);
        Assert.True(made[3].Disposed);
        Assert.False(made[2].Disposed);
    }

    [Fact]
    public void AKeyObjectThatLeavesTheCacheWhileInUseIsDisposedWhenTheWrapEnds()
    {
        var cache = new PublicKeyObjectCache(budgetBytes: 100);
        var first = new TrackedKey();
        PublicKeyObjectCache.Lease inUse = cache.Rent(new object(), _ => first, 100);

        cache.Rent(new object(), _ => new TrackedKey(), 100).Dispose(); // evicts the first one

        Assert.False(first.Disposed);
        inUse.Dispose();
        Assert.True(first.Disposed);
    }

    [Fact]
    public void ABudgetOfZeroImportsForEveryWrapAndDisposesAfterIt()
    {
        var cache = new PublicKeyObjectCache(budgetBytes: 0);
        var owner = new object();
        var made = new List<TrackedKey>();

        for (int i = 0; i < 3; i++)
        {
            using PublicKeyObjectCache.Lease lease = cache.Rent(owner, _ =>
            {
                var key = new TrackedKey();
                made.Add(key);
                return key;
            }, 100);
            Assert.False(((TrackedKey)lease.Key).Disposed);
        }

        Assert.Equal(3, made.Count);
        Assert.All(made, k => Assert.True(k.Disposed));
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void ConcurrentWrapsOfOneMemberShareOneKeyObject()
    {
        var cache = new PublicKeyObjectCache(budgetBytes: 1000);
        var owner = new object();
        int imports = 0;
        var seen = new System.Collections.Concurrent.ConcurrentBag<IDisposable>();
        Parallel.For(0, 200, _ =>
        {
            using PublicKeyObjectCache.Lease lease = cache.Rent(owner, _ =>
            {
                Interlocked.Increment(ref imports);
                return new TrackedKey();
            }, 100);
            Assert.False(((TrackedKey)lease.Key).Disposed);
            seen.Add(lease.Key);
        });

        // Racing first imports may make more than one object; the loser is dropped and every wrap used the one kept.
        Assert.Equal(1, cache.Count);
        Assert.InRange(imports, 1, 200);
        Assert.False(((TrackedKey)Assert.Single(seen.Distinct())).Disposed);
    }

    private sealed class TrackedKey : IDisposable
    {
        public bool Disposed { get; private set; }

        public void Dispose()
        {
            Assert.False(Disposed, "a key object was disposed twice");
            Disposed = true;
        }
    }
}
