using System.Net;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Testing;
using Npgsql;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>
/// The release store keeps its statements prepared on open connections (docs/key-release.md, Performance). When the
/// database drops those connections (a PostgreSQL restart or failover does), the requests that hit a dead session get
/// the unavailable answer, the session is closed, and the next requests open fresh ones: no restart of the key server
/// is needed and no release is recorded twice or lost.
/// </summary>
[Collection(ReleaseBackends.Name)]
public sealed class StoreSessionTests(ReleaseBackends backends)
{
    [Fact]
    public async Task SessionsDroppedByPostgresAreReopenedAndReleasesGoOn()
    {
        if (PostgresServer.UnavailableReason is { } reason)
        {
            Console.Error.WriteLine($"SKIPPING the PostgreSQL session case: {reason}");
            return;
        }

        await using ReleaseWorld world = backends.NewWorld("postgres");
        TestMember alice = world.AddMember("alice@example.test");
        TestMember bob = world.AddMember("bob@example.test");
        ReleaseStore store = (await world.StartAsync()).Service.Store;
        KeyReleaseSeal seal = await world.SealAndDepositAsync(await world.OpensslPostAsync("survives a dropped connection\r\n"));

        // alice's release leaves a reader session and the writer session open on the database.
        Assert.NotNull(await world.FetchAsync(seal.Entry, alice));

        int dropped;
        await using (var admin = new NpgsqlConnection(world.DirectoryOptions.ConnectionString))
        {
            await admin.OpenAsync();
            await using var kill = new NpgsqlCommand(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                admin);
            dropped = Convert.ToInt32(await kill.ExecuteScalarAsync());
        }

        Assert.True(dropped >= 2, $"the key server held {dropped} connection(s); its reader and writer sessions were expected");

        // Each attempt is a fresh request (a new nonce); until the sessions are reopened the answer is 503, never a
        // refusal and never a release without its record.
        var answers = new List<HttpStatusCode>();
        await Poll.UntilAsync(async () =>
        {
            (HttpStatusCode status, _) = await world.RawReleaseAsync(
                ReleaseWorld.SignedRequest(seal.Entry, bob.Address, bob.Certificate, bob.Key));
            answers.Add(status);
            return status == HttpStatusCode.OK;
        }, "bob's release after the database dropped the key server's connections", evidence: () => string.Join(", ", answers));

        Assert.All(answers[..^1], status => Assert.Equal(HttpStatusCode.ServiceUnavailable, status));
        IReadOnlyList<ReleaseFetch> fetches = store.GetFetches(seal.Entry.MessageIdHex);
        Assert.Equal(1, Assert.Single(fetches, f => f.Member == bob.Address).Count);
        Assert.Equal(1, Assert.Single(fetches, f => f.Member == alice.Address).Count);

        // alice again, on the reopened sessions: a second fetch of hers is counted.
        Assert.NotNull(await world.FetchAsync(seal.Entry, alice));
        Assert.Equal(2, Assert.Single(store.GetFetches(seal.Entry.MessageIdHex), f => f.Member == alice.Address).Count);
    }
}
