using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Gateway.Tests;

/// <summary>Gateway users and correspondents' certificates, pinning included, on SQLite and PostgreSQL.</summary>
[Collection(BackendCollection.Name)]
public sealed class GatewayStoreTests(BackendFixture fixture)
{
    public static TheoryData<string> Backends => BackendFixture.Names;

    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [MemberData(nameof(Backends))]
    public void UsersRoundTripWithChainAndPolicy(string backend)
    {
        using var temp = new TempDirectory();
        using GatewayStore store = GatewayStore.Open(fixture.NewDirectory(backend, temp.Path), new ManualTimeProvider(Now));
        store.AddUser(new GatewayUser("Alice@Example.org", [1, 2, 3], "user.alice.key.pem", [[9, 9], [8]], EncryptPolicy.Required, null, true, Now));
        store.AddUser(new GatewayUser("bob@example.org", null, "user.bob.key.pem", [], null, SignPolicy.Never, null, Now));

        Assert.True(store.TryGetUser("alice@EXAMPLE.org", out GatewayUser alice));
        Assert.Equal("Alice@Example.org", alice.Address);
        Assert.Equal([1, 2, 3], alice.CertificateDer);
        Assert.Equal(2, alice.Chain.Count);
        Assert.Equal([9, 9], alice.Chain[0]);
        Assert.Equal(EncryptPolicy.Required, alice.Encrypt);
        Assert.Null(alice.Sign);
        Assert.True(alice.Opaque);

        GatewayUser bob = store.GetUser("bob@example.org");
        Assert.Null(bob.CertificateDer);
        Assert.Equal(SignPolicy.Never, bob.Sign);
        store.SetUserCertificate("bob@example.org", [4, 5], [[6]]);
        Assert.Equal([4, 5], store.GetUser("bob@example.org").CertificateDer);

        DirectoryException duplicate = Assert.Throws<DirectoryException>(() => store.AddUser(bob with { Address = "BOB@example.org" }));
        Assert.Contains("already exists", duplicate.Message, StringComparison.Ordinal);
        Assert.Equal("user.alice.key.pem", store.RemoveUser("alice@example.org"));
        Assert.False(store.TryGetUser("alice@example.org", out _));
        Assert.Single(store.GetUsers());
        Assert.Equal(DirectoryError.UnknownMember, Assert.Throws<DirectoryException>(() => store.RemoveUser("alice@example.org")).Reason);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void HarvestedCertificateReplacingAPinIsPendingUntilAccepted(string backend)
    {
        using var temp = new TempDirectory();
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        using GatewayStore store = GatewayStore.Open(fixture.NewDirectory(backend, temp.Path), clock);
        using X509Certificate2 first = TestCertificates.Rsa("carol@partner.example");
        using X509Certificate2 second = TestCertificates.Rsa("carol@partner.example", bits: 3072);
        DateTimeOffset now = clock.GetUtcNow();

        // Trust on first use: the first harvested certificate is stored, pinned and used.
        Assert.Equal(HarvestOutcome.Added, Harvest(store, first, [0x30, 0x00]));
        Assert.Equal(Fingerprint(first), store.FindEncryptionCertificate("carol@partner.example", now)!.Fingerprint);

        // Seen again: only the capabilities change.
        Assert.Equal(HarvestOutcome.Refreshed, Harvest(store, first, [0x30, 0x03, 0x06, 0x01, 0x00]));
        Assert.Equal([0x30, 0x03, 0x06, 0x01, 0x00], store.GetCertificates("carol@partner.example").Single().Capabilities);

        // Another certificate for the same address while the pin holds: stored, not used.
        Assert.Equal(HarvestOutcome.PendingAcceptance, Harvest(store, second, null));
        Assert.Equal(Fingerprint(first), store.FindEncryptionCertificate("carol@partner.example", now)!.Fingerprint);
        CorrespondentCertificate pending = store.GetCertificates("carol@partner.example").Single(c => c.State == CorrespondentState.Pending);
        Assert.Equal(CertificateTrust.Harvested, pending.Trust);

        // The operator accepts it: it becomes the pin and the one used.
        Assert.Equal(Fingerprint(second), store.Accept("carol@partner.example", Fingerprint(second).Replace(":", string.Empty, StringComparison.Ordinal).ToLowerInvariant()));
        Assert.Equal(Fingerprint(second), store.FindEncryptionCertificate("carol@partner.example", now)!.Fingerprint);
        Assert.Equal(DirectoryError.UnknownMember, Assert.Throws<DirectoryException>(() => store.Accept("carol@partner.example", null)).Reason);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ManualImportPinsAndAnExpiredPinNoLongerHolds(string backend)
    {
        using var temp = new TempDirectory();
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        using GatewayStore store = GatewayStore.Open(fixture.NewDirectory(backend, temp.Path), clock);
        DateTimeOffset now = clock.GetUtcNow();
        using X509Certificate2 manual = TestCertificates.Rsa("dave@partner.example", notAfter: now.AddDays(10));
        using X509Certificate2 later = TestCertificates.Rsa("dave@partner.example", bits: 3072, notAfter: now.AddDays(400));
        store.ImportCertificate("dave@partner.example", manual.RawData, Fingerprint(manual), CertificateTrust.Manual, pin: true, manual.NotBefore.ToUniversalTime(), manual.NotAfter.ToUniversalTime());

        Assert.Equal(HarvestOutcome.PendingAcceptance, Harvest(store, later, null));
        Assert.Equal(Fingerprint(manual), store.FindEncryptionCertificate("dave@partner.example", now)!.Fingerprint);

        // After the pinned certificate expired, nothing pinned is usable: a new harvest replaces it.
        clock.Advance(TimeSpan.FromDays(30));
        Assert.Null(store.FindEncryptionCertificate("dave@partner.example", clock.GetUtcNow())); // the pending one is never used
        store.RemoveCertificates("dave@partner.example", Fingerprint(later));
        Assert.Equal(HarvestOutcome.Added, Harvest(store, later, null));
        Assert.Equal(Fingerprint(later), store.FindEncryptionCertificate("dave@partner.example", clock.GetUtcNow())!.Fingerprint);

        Assert.Equal(2, store.RemoveCertificates("dave@partner.example", null));
        Assert.Empty(store.GetCertificates("dave@partner.example"));
        Assert.Throws<DirectoryException>(() => store.RemoveCertificates("dave@partner.example", null));
    }

    private static HarvestOutcome Harvest(GatewayStore store, X509Certificate2 certificate, byte[]? capabilities) =>
        store.Harvest(certificate.GetNameInfo(X509NameType.EmailName, false), certificate.RawData, Fingerprint(certificate), capabilities, certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime());

    private static string Fingerprint(X509Certificate2 certificate) => CertificateInspector.Sha256Fingerprint(certificate);
}
