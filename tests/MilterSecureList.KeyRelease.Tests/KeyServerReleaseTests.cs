using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>The key server over TLS on loopback with SQLite; the sender and the reader are openssl.</summary>
public sealed class KeyServerReleaseTests : IAsyncLifetime
{
    private readonly ReleaseWorld _world = new();
    private TestMember _alice = null!;
    private TestMember _bob = null!;

    public async Task InitializeAsync()
    {
        _alice = _world.AddMember("alice@example.test");
        _bob = _world.AddMember("bob@example.test");
        await _world.StartAsync();
    }

    public async Task DisposeAsync() => await _world.DisposeAsync();

    private async Task<ReleaseHttpResponse?> AskAsync(byte[] signed)
    {
        using KeyReleaseClient http = _world.ReaderHttp();
        return await http.ReleaseAsync(_world.Url, signed, CancellationToken.None);
    }

    [Fact]
    public async Task AMemberFetchesTheKeyAndOpensslDecryptsTheResult()
    {
        byte[] post = await _world.OpensslPostAsync("Subject: hello\r\n\r\nthe secret plan\r\n");
        KeyReleaseSeal seal = await _world.SealAndDepositAsync(post);

        // The sealed post carries no key for anyone: openssl cannot open it with a member's key.
        Assert.Null(await _world.OpensslDecryptAsync(seal.ContentInfo, _alice));
        KeyReleaseEntry entry = KeyReleaseReader.Find(seal.ContentInfo)!;
        Assert.Equal(_world.Url.ToString(), entry.KeyServer);
        Assert.Equal(ReleaseWorld.List, entry.Policy.List);

        ReleaseHttpResponse? reply = await AskAsync(ReleaseWorld.SignedRequest(entry, _alice.Address, _alice.Certificate, _alice.Key));
        Assert.NotNull(reply);
        Assert.True(reply.FirstRelease);
        byte[] readable = KeyReleaseReader.Insert(seal.ContentInfo, reply.RecipientInfo);
        Assert.Equal("Subject: hello\r\n\r\nthe secret plan\r\n", await _world.OpensslDecryptAsync(readable, _alice));
        Assert.Null(KeyReleaseReader.Find(readable));

        // A second fetch works and is not the first; status shows one member, fetched twice.
        ReleaseHttpResponse? again = await AskAsync(ReleaseWorld.SignedRequest(entry, _alice.Address, _alice.Certificate, _alice.Key));
        Assert.False(again!.FirstRelease);
        ReleaseFetch fetch = Assert.Single(_world.Host!.Service.Store.GetFetches(entry.MessageIdHex));
        Assert.Equal((_alice.Address, 2L), (fetch.Member, fetch.Count));
    }

    [Fact]
    public async Task ForgedRequestsAreRefusedAlikeAndAudited()
    {
        byte[] post = await _world.OpensslPostAsync("forgery target\r\n");
        KeyReleaseSeal seal = await _world.SealAndDepositAsync(post);
        KeyReleaseEntry entry = seal.Entry;
        TestMember mallory = _world.AddMember("mallory@example.test", addToList: false);

        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        Assert.NotNull(await AskAsync(ReleaseWorld.SignedRequest(entry, _bob.Address, _bob.Certificate, _bob.Key, nonce)));

        byte[] tampered = (byte[])entry.Binding.Clone();
        tampered[0] ^= 1;
        var forgeries = new (string Why, byte[] Signed)[]
        {
            ("bob signs as alice", ReleaseWorld.SignedRequest(entry, _alice.Address, _bob.Certificate, _bob.Key)),
            ("alice's certificate, mallory's key", SignedWithSwappedCertificate(entry, _alice, mallory)),
            ("a non-member", ReleaseWorld.SignedRequest(entry, mallory.Address, mallory.Certificate, mallory.Key)),
            ("replayed nonce", ReleaseWorld.SignedRequest(entry, _bob.Address, _bob.Certificate, _bob.Key, nonce)),
            ("tampered binding", ReleaseWorld.SignedRequest(entry, _alice.Address, _alice.Certificate, _alice.Key, binding: tampered)),
            ("stale time", ReleaseWorld.SignedRequest(entry, _alice.Address, _alice.Certificate, _alice.Key, time: DateTimeOffset.UtcNow.AddHours(-1))),
            ("unknown message", new ReleaseRequest(KeyReleaseEntry.NewMessageId(), _alice.Address, RandomNumberGenerator.GetBytes(32), DateTimeOffset.UtcNow, entry.Binding).Sign(_alice.Certificate, _alice.Key)),
            ("not a signature", Encoding.ASCII.GetBytes("garbage")),
        };

        foreach ((string why, byte[] signed) in forgeries)
        {
            Assert.True(await AskAsync(signed) is null, why);
        }

        // The reply is the same fixed text whatever failed.
        using var raw = new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && c.GetRawCertData().AsSpan().SequenceEqual(_world.TlsCertificate.RawData) } });
        var bodies = new HashSet<string>();
        foreach ((_, byte[] signed) in forgeries)
        {
            HttpResponseMessage r = await raw.PostAsync(new Uri(_world.Url, "v1/release"),
                new StringContent($"{{\"request\":\"{Convert.ToBase64String(signed)}\"}}", Encoding.UTF8, "application/json"));
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, r.StatusCode);
            bodies.Add(await r.Content.ReadAsStringAsync());
        }

        Assert.Equal("{\"error\":\"release refused\"}", Assert.Single(bodies));

        // The operator sees which check failed, per request.
        IReadOnlyList<ReleaseAuditRow> audit = _world.Host!.Service.Store.GetAudit(entry.MessageIdHex);
        string[] reasons = [.. audit.Where(a => a.Result == "refused").Select(a => a.Reason).Distinct().Order()];
        Assert.Equal(["binding", "certificate", "membership", "replay", "time"], reasons);
        // A request whose signature does not verify names no message the server would trust: audited under "-".
        Assert.Equal(4, _world.Host.Service.Store.GetAudit("-").Count(a => a.Reason == "signature"));
        Assert.Equal("released", audit[0].Result);
        Assert.All(audit, a => Assert.Equal("127.0.0.1", a.Client));
    }

    [Fact]
    public async Task RemovedRevokedAndExpiredAreRefused()
    {
        KeyReleaseSeal first = await _world.SealAndDepositAsync(await _world.OpensslPostAsync("one\r\n"));
        KeyReleaseSeal second = await _world.SealAndDepositAsync(await _world.OpensslPostAsync("two\r\n"));
        KeyReleaseSeal shortLived = await _world.SealAndDepositAsync(await _world.OpensslPostAsync("three\r\n"), notAfter: DateTimeOffset.UtcNow.AddSeconds(2));
        ReleaseStore store = _world.Host!.Service.Store;

        // Revoked for one member only, then for everyone.
        Assert.True(store.Revoke(first.Entry.MessageIdHex, _bob.Address));
        Assert.Null(await AskAsync(ReleaseWorld.SignedRequest(first.Entry, _bob.Address, _bob.Certificate, _bob.Key)));
        Assert.NotNull(await AskAsync(ReleaseWorld.SignedRequest(first.Entry, _alice.Address, _alice.Certificate, _alice.Key)));
        Assert.True(store.Revoke(first.Entry.MessageIdHex, null));
        Assert.Null(await AskAsync(ReleaseWorld.SignedRequest(first.Entry, _alice.Address, _alice.Certificate, _alice.Key)));
        Assert.False(store.Revoke(KeyReleaseEntry.NewMessageId().ToString()!, null));

        // Expired: poll until the post's notAfter has passed, then the member is refused.
        await Poll.UntilAsync(
            async () => await AskAsync(ReleaseWorld.SignedRequest(shortLived.Entry, _alice.Address, _alice.Certificate, _alice.Key)) is null,
            "the key server to refuse alice once the post's notAfter has passed",
            interval: TimeSpan.FromMilliseconds(200));
        Assert.Contains(store.GetAudit(shortLived.Entry.MessageIdHex), a => a.Reason == "expired");

        // Removed after the post: refused once the key server's directory cache has seen the change.
        _world.Admin.RemoveMember(ReleaseWorld.List, _bob.Address);
        await Poll.UntilAsync(
            async () => await AskAsync(ReleaseWorld.SignedRequest(second.Entry, _bob.Address, _bob.Certificate, _bob.Key)) is null,
            "the key server to refuse bob after his removal from the list",
            interval: TimeSpan.FromMilliseconds(200));
        Assert.Contains(store.GetAudit(second.Entry.MessageIdHex), a => a.Member == _bob.Address && a.Reason == "membership");
        Assert.NotNull(await AskAsync(ReleaseWorld.SignedRequest(second.Entry, _alice.Address, _alice.Certificate, _alice.Key)));
    }

    [Fact]
    public async Task DepositsNeedTheMiltersClientCertificateAndAValidBinding()
    {
        byte[] post = await _world.OpensslPostAsync("deposit\r\n");
        var policy = new ReleasePolicy(ReleaseWorld.List, ReleaseMode.Rekey, "alice@example.test", DateTimeOffset.UtcNow.AddDays(1));
        KeyReleaseSeal seal = KeyReleaseSealer.Seal(post, _world.ListKeys(), _world.ReleaseRecipient, _world.Url.ToString(), policy, KeyReleaseEntry.NewMessageId());
        DepositRequest deposit = KeyReleaseDeposit.From(seal);

        // Without a client certificate (a reader's client), or with one not listed: refused.
        using (KeyReleaseClient reader = _world.ReaderHttp())
        {
            await Assert.ThrowsAsync<KeyServerUnavailableException>(() => reader.DepositAsync(_world.Url, deposit, CancellationToken.None));
        }

        using KeyReleaseClient milter = _world.MilterHttp();
        // A policy changed after sealing (longer expiry) no longer matches the binding.
        DepositRequest extended = KeyReleaseDeposit.From(seal);
        extended.Policy = (policy with { NotAfter = DateTimeOffset.UtcNow.AddYears(10) }).Encode();
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() => milter.DepositAsync(_world.Url, extended, CancellationToken.None));
        // A list that is not a release list.
        _world.Admin.CreateList("plain@lists.test", Directory.ListMode.Rekey, null, Directory.ListKeyType.Rsa2048);
        DepositRequest otherList = KeyReleaseDeposit.From(seal);
        otherList.Policy = (policy with { List = "plain@lists.test" }).Encode();
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() => milter.DepositAsync(_world.Url, otherList, CancellationToken.None));

        await milter.DepositAsync(_world.Url, deposit, CancellationToken.None);
        await milter.DepositAsync(_world.Url, deposit, CancellationToken.None); // the same again: idempotent
        DepositRequest conflicting = KeyReleaseDeposit.From(seal);
        conflicting.Binding = new byte[32];
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() => milter.DepositAsync(_world.Url, conflicting, CancellationToken.None));
    }

    [Fact]
    public async Task TheReaderRefusesAKeyServerWhoseCertificateIsNotTheTrustedOne()
    {
        KeyReleaseSeal seal = await _world.SealAndDepositAsync(await _world.OpensslPostAsync("pinned\r\n"));
        using KeyReleaseClient wrongTrust = new([_world.ReleaseCertificate], null, TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() =>
            wrongTrust.ReleaseAsync(_world.Url, ReleaseWorld.SignedRequest(seal.Entry, _alice.Address, _alice.Certificate, _alice.Key), CancellationToken.None));
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
