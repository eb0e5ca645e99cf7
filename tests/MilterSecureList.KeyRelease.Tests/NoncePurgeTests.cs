using System.Security.Cryptography;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>
/// Nonces are purged by the release writer itself once their replay window has passed (docs/key-release.md,
/// Performance): an expired nonce goes, one still inside its window stays and its replay is still refused.
/// </summary>
[Collection(ReleaseBackends.Name)]
public sealed class NoncePurgeTests(ReleaseBackends backends)
{
    public static TheoryData<string> Backends => ReleaseBackends.Names;

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task TheWriterPurgesExpiredNoncesAndKeepsLiveOnes(string backend)
    {
        await using ReleaseWorld world = backends.NewWorld(backend);
        // The store alone: no key server, so no sweep purges behind the writer's back.
        using ReleaseStore store = ReleaseStore.Open(world.DirectoryOptions, TimeProvider.System);
        store.PurgeEvery = 3;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var audit = new ReleaseAuditRow(new string('0', 32), "alice@example.test", now, "127.0.0.1", "refused", "test");
        string Nonce() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

        string expired = Nonce();
        string live = Nonce();
        Assert.True((await store.CommitReleaseAsync(expired, now.AddMinutes(-1), audit, released: false)).NonceFresh);
        Assert.True((await store.CommitReleaseAsync(live, now.AddMinutes(10), audit, released: false)).NonceFresh);
        Assert.False((await store.CommitReleaseAsync(expired, now.AddMinutes(-1), audit, released: false)).NonceFresh);

        // The third nonce taken makes a purge due after that batch: the expired nonce is then accepted as new.
        await Poll.UntilAsync(async () => (await store.CommitReleaseAsync(expired, now.AddMinutes(-1), audit, released: false)).NonceFresh,
            "the expired nonce purged by the writer");
        Assert.False((await store.CommitReleaseAsync(live, now.AddMinutes(10), audit, released: false)).NonceFresh);
    }
}
