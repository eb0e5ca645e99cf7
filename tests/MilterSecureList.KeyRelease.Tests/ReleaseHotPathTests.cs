using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.KeyServer;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>The release path's shortcuts (docs/key-release.md, Performance): signers verified with a cached key, and
/// writes group-committed. Each must refuse exactly what the general path refuses and lose nothing it answered.</summary>
public sealed class ReleaseHotPathTests
{
    private static (X509Certificate2 Certificate, RSA Key) Member(string address, RSA? key = null, X509Certificate2? lookalikeOf = null)
    {
        key ??= RSA.Create(2048);
        var request = new CertificateRequest(lookalikeOf?.SubjectName ?? new X500DistinguishedName($"CN={address}"), key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        if (lookalikeOf is null)
        {
            using X509Certificate2 self = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            return (X509CertificateLoader.LoadCertificate(self.RawData), key);
        }

        using X509Certificate2 made = request.Create(lookalikeOf.IssuerName, X509SignatureGenerator.CreateForRSA(key, RSASignaturePadding.Pkcs1),
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), lookalikeOf.SerialNumberBytes.Span);
        return (X509CertificateLoader.LoadCertificate(made.RawData), key);
    }

    private static ReleaseRequest Request(string member) =>
        new(KeyReleaseEntry.NewMessageId(), member, RandomNumberGenerator.GetBytes(32), DateTimeOffset.UtcNow, RandomNumberGenerator.GetBytes(32));

    [Fact]
    public void ACachedSignerVerifiesOnlyWhatItsKeySigned()
    {
        (X509Certificate2 alice, RSA aliceKey) = Member("alice@example.test");
        (X509Certificate2 mallory, RSA malloryKey) = Member("mallory@example.test");
        var cache = new ReleaseSignerCache();
        cache.Remember(alice);

        ReleaseRequest request = Request("alice@example.test");
        byte[] signed = request.Sign(alice, aliceKey);
        (ReleaseRequest read, X509Certificate2 signer, bool cached) = ReleaseRequest.Verify(signed, cache);
        Assert.True(cached);
        Assert.Equal(request.Nonce, read.Nonce);
        Assert.Equal(alice.RawData, signer.RawData);

        // Not cached: the general path verifies it, and the caller owns the certificate.
        (_, X509Certificate2 other, bool otherCached) = ReleaseRequest.Verify(Request("mallory@example.test").Sign(mallory, malloryKey), cache);
        Assert.False(otherCached);
        other.Dispose();

        // Alice's cached certificate in front of mallory's signature (issuer and serial copied): refused.
        (X509Certificate2 lookalike, _) = Member("alice@example.test", malloryKey, alice);
        var swapped = new SignedCms();
        swapped.Decode(Request("alice@example.test").Sign(lookalike, malloryKey));
        swapped.RemoveCertificate(swapped.Certificates[0]);
        swapped.AddCertificate(alice);
        Assert.ThrowsAny<CryptographicException>(() => ReleaseRequest.Verify(swapped.Encode(), cache));

        // The content changed after signing (one nonce byte): the message digest no longer matches.
        byte[] content = request.Encode();
        byte[] tampered = (byte[])signed.Clone();
        int at = tampered.AsSpan().IndexOf(content);
        Assert.True(at > 0);
        tampered[at + content.AsSpan().IndexOf(request.Nonce)] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() => ReleaseRequest.Verify(tampered, cache));

        // The signature's last byte flipped (SignedCms writes it last).
        byte[] badSignature = (byte[])signed.Clone();
        badSignature[^1] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() => ReleaseRequest.Verify(badSignature, cache));
    }

    [Fact]
    public async Task ConcurrentReleasesAreEachCommittedAndAReplayInTheSameBatchIsRefused()
    {
        await using var world = new ReleaseWorld();
        TestMember alice = world.AddMember("alice@example.test");
        TestMember bob = world.AddMember("bob@example.test");
        TestMember mallory = world.AddMember("mallory@example.test", addToList: false);
        KeyServerHost host = await world.StartAsync();
        KeyReleaseEntry entry = (await world.SealAndDepositAsync(await world.OpensslPostAsync("many at once\r\n"))).Entry;
        KeyReleaseService service = host.Service;

        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        byte[] replayed = ReleaseWorld.SignedRequest(entry, alice.Address, alice.Certificate, alice.Key, nonce);
        byte[][] requests = [.. Enumerable.Range(0, 40).Select(i => i % 2 == 0
            ? ReleaseWorld.SignedRequest(entry, alice.Address, alice.Certificate, alice.Key)
            : ReleaseWorld.SignedRequest(entry, bob.Address, bob.Certificate, bob.Key)), replayed, replayed];
        ReleaseOutcome[] outcomes = await Task.WhenAll(requests.Select(r => Task.Run(() => service.ReleaseAsync(r, "127.0.0.1"))));

        Assert.Equal(41, outcomes.Count(o => o.Released));
        Assert.Equal("replay", Assert.Single(outcomes, o => !o.Released).Reason);
        Assert.Equal(2, outcomes.Count(o => o.FirstRelease));

        // Answered means committed: every answer has its audit row and the fetch counts add up.
        IReadOnlyList<ReleaseAuditRow> audit = service.Store.GetAudit(entry.MessageIdHex);
        Assert.Equal(42, audit.Count);
        Assert.Equal(41, audit.Count(a => a.Result == "released"));
        Assert.Equal(41, service.Store.GetFetches(entry.MessageIdHex).Sum(f => f.Count));

        // Alice's certificate is cached now; her certificate in front of mallory's signature is still refused.
        (X509Certificate2 lookalike, _) = Member(alice.Address, mallory.Key, alice.Certificate);
        var swapped = new SignedCms();
        swapped.Decode(ReleaseWorld.SignedRequest(entry, alice.Address, lookalike, mallory.Key));
        swapped.RemoveCertificate(swapped.Certificates[0]);
        swapped.AddCertificate(alice.Certificate);
        Assert.Equal("signature", (await service.ReleaseAsync(swapped.Encode(), "127.0.0.1")).Reason);
    }
}
