using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>The key server over TLS on loopback, on SQLite and on PostgreSQL; the sender and the reader are openssl.</summary>
[Collection(ReleaseBackends.Name)]
public sealed class KeyServerReleaseTests(ReleaseBackends backends)
{
    public static TheoryData<string> Backends => ReleaseBackends.Names;

    /// <summary>Members alice and bob, then the key server.</summary>
    private static async Task<(TestMember Alice, TestMember Bob)> StartAsync(ReleaseWorld world)
    {
        TestMember alice = world.AddMember("alice@example.test");
        TestMember bob = world.AddMember("bob@example.test");
        await world.StartAsync();
        return (alice, bob);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task AMemberFetchesTheKeyAndOpensslDecryptsTheResult(string backend)
    {
        await using ReleaseWorld world = backends.NewWorld(backend);
        (TestMember alice, _) = await StartAsync(world);
        byte[] post = await world.OpensslPostAsync("Subject: hello\r\n\r\nthe secret plan\r\n");
        KeyReleaseSeal seal = await world.SealAndDepositAsync(post);

        // The sealed post carries no key for anyone: openssl cannot open it with a member's key.
        Assert.Null(await world.OpensslDecryptAsync(seal.ContentInfo, alice));
        KeyReleaseEntry entry = KeyReleaseReader.Find(seal.ContentInfo)!;
        Assert.Equal(world.Url.ToString(), entry.KeyServer);
        Assert.Equal(ReleaseWorld.List, entry.Policy.List);

        ReleaseHttpResponse? reply = await world.AskAsync(ReleaseWorld.SignedRequest(entry, alice.Address, alice.Certificate, alice.Key));
        Assert.NotNull(reply);
        Assert.True(reply.FirstRelease);
        byte[] readable = KeyReleaseReader.Insert(seal.ContentInfo, reply.RecipientInfo);
        Assert.Equal("Subject: hello\r\n\r\nthe secret plan\r\n", await world.OpensslDecryptAsync(readable, alice));
        Assert.Null(KeyReleaseReader.Find(readable));

        // A second fetch works and is not the first; status shows one member, fetched twice.
        ReleaseHttpResponse? again = await world.AskAsync(ReleaseWorld.SignedRequest(entry, alice.Address, alice.Certificate, alice.Key));
        Assert.False(again!.FirstRelease);
        ReleaseFetch fetch = Assert.Single(world.Host!.Service.Store.GetFetches(entry.MessageIdHex));
        Assert.Equal((alice.Address, 2L), (fetch.Member, fetch.Count));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task ForgedRequestsAreRefusedAlikeAndAudited(string backend)
    {
        await using ReleaseWorld world = backends.NewWorld(backend);
        (TestMember alice, TestMember bob) = await StartAsync(world);
        byte[] post = await world.OpensslPostAsync("forgery target\r\n");
        KeyReleaseSeal seal = await world.SealAndDepositAsync(post);
        KeyReleaseEntry entry = seal.Entry;
        TestMember mallory = world.AddMember("mallory@example.test", addToList: false);

        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        Assert.NotNull(await world.AskAsync(ReleaseWorld.SignedRequest(entry, bob.Address, bob.Certificate, bob.Key, nonce)));

        byte[] tampered = (byte[])entry.Binding.Clone();
        tampered[0] ^= 1;
        var forgeries = new (string Why, byte[] Signed)[]
        {
            ("bob signs as alice", ReleaseWorld.SignedRequest(entry, alice.Address, bob.Certificate, bob.Key)),
            ("alice's certificate, mallory's key", SignedWithSwappedCertificate(entry, alice, mallory)),
            ("a non-member", ReleaseWorld.SignedRequest(entry, mallory.Address, mallory.Certificate, mallory.Key)),
            ("replayed nonce", ReleaseWorld.SignedRequest(entry, bob.Address, bob.Certificate, bob.Key, nonce)),
            ("tampered binding", ReleaseWorld.SignedRequest(entry, alice.Address, alice.Certificate, alice.Key, binding: tampered)),
            ("stale time", ReleaseWorld.SignedRequest(entry, alice.Address, alice.Certificate, alice.Key, time: DateTimeOffset.UtcNow.AddHours(-1))),
            ("unknown message", new ReleaseRequest(KeyReleaseEntry.NewMessageId(), alice.Address, RandomNumberGenerator.GetBytes(32), DateTimeOffset.UtcNow, entry.Binding).Sign(alice.Certificate, alice.Key)),
            ("not a signature", Encoding.ASCII.GetBytes("garbage")),
        };

        foreach ((string why, byte[] signed) in forgeries)
        {
            Assert.True(await world.AskAsync(signed) is null, why);
        }

        // The reply is the same fixed text whatever failed.
        var bodies = new HashSet<string>();
        foreach ((_, byte[] signed) in forgeries)
        {
            (System.Net.HttpStatusCode status, string body) = await world.RawReleaseAsync(signed);
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, status);
            bodies.Add(body);
        }

        Assert.Equal("{\"error\":\"release refused\"}", Assert.Single(bodies));

        // The operator sees which check failed, per request.
        IReadOnlyList<ReleaseAuditRow> audit = world.Host!.Service.Store.GetAudit(entry.MessageIdHex);
        string[] reasons = [.. audit.Where(a => a.Result == "refused").Select(a => a.Reason).Distinct().Order()];
        Assert.Equal(["binding", "certificate", "membership", "replay", "time"], reasons);
        // A request whose signature does not verify names no message the server would trust: audited under "-".
        Assert.Equal(4, world.Host.Service.Store.GetAudit("-").Count(a => a.Reason == "signature"));
        Assert.Equal("released", audit[0].Result);
        Assert.All(audit, a => Assert.Equal("127.0.0.1", a.Client));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task RemovedRevokedAndExpiredAreRefused(string backend)
    {
        await using ReleaseWorld world = backends.NewWorld(backend);
        (TestMember alice, TestMember bob) = await StartAsync(world);
        KeyReleaseSeal first = await world.SealAndDepositAsync(await world.OpensslPostAsync("one\r\n"));
        KeyReleaseSeal second = await world.SealAndDepositAsync(await world.OpensslPostAsync("two\r\n"));
        KeyReleaseSeal shortLived = await world.SealAndDepositAsync(await world.OpensslPostAsync("three\r\n"), notAfter: DateTimeOffset.UtcNow.AddSeconds(2));
        ReleaseStore store = world.Host!.Service.Store;

        // Revoked for one member only, then for everyone.
        Assert.True(store.Revoke(first.Entry.MessageIdHex, bob.Address));
        Assert.Null(await world.AskAsync(ReleaseWorld.SignedRequest(first.Entry, bob.Address, bob.Certificate, bob.Key)));
        Assert.NotNull(await world.AskAsync(ReleaseWorld.SignedRequest(first.Entry, alice.Address, alice.Certificate, alice.Key)));
        Assert.True(store.Revoke(first.Entry.MessageIdHex, null));
        Assert.Null(await world.AskAsync(ReleaseWorld.SignedRequest(first.Entry, alice.Address, alice.Certificate, alice.Key)));
        Assert.False(store.Revoke(KeyReleaseEntry.NewMessageId().ToString()!, null));

        // Expired: poll until the post's notAfter has passed, then the member is refused.
        await Poll.UntilAsync(
            async () => await world.AskAsync(ReleaseWorld.SignedRequest(shortLived.Entry, alice.Address, alice.Certificate, alice.Key)) is null,
            "the key server to refuse alice once the post's notAfter has passed",
            interval: TimeSpan.FromMilliseconds(200));
        Assert.Contains(store.GetAudit(shortLived.Entry.MessageIdHex), a => a.Reason == "expired");

        // Removed after the post: refused once the key server's directory cache has seen the change.
        world.Admin.RemoveMember(ReleaseWorld.List, bob.Address);
        await Poll.UntilAsync(
            async () => await world.AskAsync(ReleaseWorld.SignedRequest(second.Entry, bob.Address, bob.Certificate, bob.Key)) is null,
            "the key server to refuse bob after his removal from the list",
            interval: TimeSpan.FromMilliseconds(200));
        Assert.Contains(store.GetAudit(second.Entry.MessageIdHex), a => a.Member == bob.Address && a.Reason == "membership");
        Assert.NotNull(await world.AskAsync(ReleaseWorld.SignedRequest(second.Entry, alice.Address, alice.Certificate, alice.Key)));
    }

    [Fact]
    public async Task DepositsNeedTheMiltersClientCertificateAndAValidBinding()
    {
        await using ReleaseWorld world = backends.NewWorld("sqlite");
        await StartAsync(world);
        byte[] post = await world.OpensslPostAsync("deposit\r\n");
        var policy = new ReleasePolicy(ReleaseWorld.List, ReleaseMode.Rekey, "alice@example.test", DateTimeOffset.UtcNow.AddDays(1));
        KeyReleaseSeal seal = KeyReleaseSealer.Seal(post, world.ListKeys(), world.ReleaseRecipient, world.Url.ToString(), policy, KeyReleaseEntry.NewMessageId());
        DepositRequest deposit = KeyReleaseDeposit.From(seal);

        // Without a client certificate (a reader's client), or with one not listed: refused.
        using (KeyReleaseClient reader = world.ReaderHttp())
        {
            await Assert.ThrowsAsync<KeyServerUnavailableException>(() => reader.DepositAsync(world.Url, deposit, CancellationToken.None));
        }

        using KeyReleaseClient milter = world.MilterHttp();
        // A policy changed after sealing (longer expiry) no longer matches the binding.
        DepositRequest extended = KeyReleaseDeposit.From(seal);
        extended.Policy = (policy with { NotAfter = DateTimeOffset.UtcNow.AddYears(10) }).Encode();
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() => milter.DepositAsync(world.Url, extended, CancellationToken.None));
        // A list that is not a release list.
        world.Admin.CreateList("plain@lists.test", Directory.ListMode.Rekey, null, Directory.ListKeyType.Rsa2048);
        DepositRequest otherList = KeyReleaseDeposit.From(seal);
        otherList.Policy = (policy with { List = "plain@lists.test" }).Encode();
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() => milter.DepositAsync(world.Url, otherList, CancellationToken.None));

        await milter.DepositAsync(world.Url, deposit, CancellationToken.None);
        await milter.DepositAsync(world.Url, deposit, CancellationToken.None); // the same again: idempotent
        DepositRequest conflicting = KeyReleaseDeposit.From(seal);
        conflicting.Binding = new byte[32];
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() => milter.DepositAsync(world.Url, conflicting, CancellationToken.None));
    }

    [Fact]
    public async Task TheReaderRefusesAKeyServerWhoseCertificateIsNotTheTrustedOne()
    {
        await using ReleaseWorld world = backends.NewWorld("sqlite");
        (TestMember alice, _) = await StartAsync(world);
        KeyReleaseSeal seal = await world.SealAndDepositAsync(await world.OpensslPostAsync("pinned\r\n"));
        using KeyReleaseClient wrongTrust = new([world.ReleaseCertificate], null, TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() =>
            wrongTrust.ReleaseAsync(world.Url, ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key), CancellationToken.None));
    }

    /// <summary>Mallory signs with her key under a certificate naming alice's issuer and serial, then puts alice's real
    /// certificate in its place: the SignerInfo now points at alice's certificate, the signature is mallory's.</summary>
    private static byte[] SignedWithSwappedCertificate(KeyReleaseEntry entry, TestMember victim, TestMember attacker)
    {
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(victim.Certificate.SubjectName, attacker.Key,
            HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var lookalike = request.Create(victim.Certificate.IssuerName, System.Security.Cryptography.X509Certificates.X509SignatureGenerator.CreateForRSA(attacker.Key, RSASignaturePadding.Pkcs1),
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), victim.Certificate.SerialNumberBytes.Span);
        byte[] signed = ReleaseWorld.SignedRequest(entry, victim.Address, lookalike, attacker.Key);
        var cms = new System.Security.Cryptography.Pkcs.SignedCms();
        cms.Decode(signed);
        cms.RemoveCertificate(cms.Certificates[0]);
        cms.AddCertificate(victim.Certificate);
        Assert.Equal(victim.Certificate.RawData, cms.SignerInfos[0].Certificate!.RawData);
        return cms.Encode();
    }
}
