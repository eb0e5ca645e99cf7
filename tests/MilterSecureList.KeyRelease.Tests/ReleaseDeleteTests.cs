using System.Net;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>
/// List option <c>release-delete</c> (docs/key-release.md §4.3) on SQLite and PostgreSQL: <c>after-all</c> forgets a post's
/// key material at the fetch that completes the members at deposit time, <c>at-expiry</c> (the default) by the key
/// server's sweep once notAfter has passed, <c>never</c> keeps it. The sweep runs every second here.
/// </summary>
[Collection(ReleaseBackends.Name)]
public sealed class ReleaseDeleteTests(ReleaseBackends backends)
{
    private const string Refused = "{\"error\":\"release refused\"}";

    public static TheoryData<string> Backends => ReleaseBackends.Names;

    /// <summary>The key server, sweeping every second, for the list with <paramref name="delete"/> and alice and bob;
    /// returns its store.</summary>
    private static async Task<ReleaseStore> StartAsync(ReleaseWorld world, string delete)
    {
        world.SetKeyServer("SweepInterval = 1s");
        world.AddMember("alice@example.test");
        world.AddMember("bob@example.test");
        world.SetListOptions("release-delete=" + delete);
        return (await world.StartAsync()).Service.Store;
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task AfterAllForgetsTheKeyOnceEveryMemberAtDepositTimeFetchedIt(string backend)
    {
        await using ReleaseWorld world = backends.NewWorld(backend);
        ReleaseStore store = await StartAsync(world, "after-all");
        (TestMember alice, TestMember bob) = (world.Member("alice@example.test"), world.Member("bob@example.test"));

        KeyReleaseSeal seal = await world.SealAndDepositAsync(await world.OpensslPostAsync("read once by each\r\n"));
        string id = seal.Entry.MessageIdHex;
        if (backend == "sqlite")
        {
            Assert.True(ContainsDeposit(world.RawDatabaseFiles(), seal.KeyRecipientInfo), "the deposit is expected in the database files before it is forgotten");
        }

        // carol joins after the post: her fetch does not count towards the members at deposit time.
        TestMember carol = world.AddMember("carol@example.test");
        await Poll.UntilAsync(() => world.Host!.Service.Directory.Expand(ReleaseWorld.List).Members.Any(m => m.Address == carol.Address),
            "the key server's directory cache to see carol");
        Assert.NotNull(await world.FetchAsync(seal.Entry, alice));
        Assert.NotNull(await world.FetchAsync(seal.Entry, alice));
        Assert.NotNull(await world.FetchAsync(seal.Entry, carol));
        Assert.NotNull(store.GetMessage(id)!.KeyRecipientInfo);
        Assert.Equal(1, store.GetPendingCount(id));
        (int code, string status, string error) = ReleaseWorld.Cli("release", "status", id, "--config", world.WriteMilterIni());
        Assert.True(code == 0, error);
        Assert.Contains("key held (release-delete after-all)", status);
        Assert.Contains("1 member(s) at deposit time have not fetched yet", status);

        // bob's fetch completes the set: he gets his key, and the key server forgets it in the same transaction.
        ReleaseHttpResponse? last = await world.FetchAsync(seal.Entry, bob);
        Assert.NotNull(last);
        Assert.Equal("read once by each\r\n", await world.OpensslDecryptAsync(KeyReleaseReader.Insert(seal.ContentInfo, last.RecipientInfo), bob));
        ReleaseRecord forgotten = store.GetMessage(id)!;
        Assert.Null(forgotten.KeyRecipientInfo);
        Assert.NotNull(forgotten.DeletedAt);
        Assert.Equal(ReleaseStore.ForgottenAfterAll, forgotten.DeleteReason);

        // Afterwards every member is refused with the one refusal body; the audit row says why.
        (HttpStatusCode httpStatus, string body) = await world.RawReleaseAsync(ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key));
        Assert.Equal((HttpStatusCode.Forbidden, Refused), (httpStatus, body));
        Assert.Equal("deleted", store.GetAudit(id)[^1].Reason);
        (code, status, error) = ReleaseWorld.Cli("release", "status", id, "--config", world.WriteMilterIni());
        Assert.True(code == 0, error);
        Assert.Matches(@"key deleted \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(after-all\)", status);
        Assert.Contains("3 member(s) fetched:", status);

        // SQLite: neither the database file nor its log keeps the deposited bytes once the sweep has checkpointed.
        if (backend == "sqlite")
        {
            await Poll.UntilAsync(() => !ContainsDeposit(world.RawDatabaseFiles(), seal.KeyRecipientInfo),
                "the deposited key material to be gone from lists.db and lists.db-wal");
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task AtExpiryTheSweepForgetsTheKeyAndNeverKeepsIt(string backend)
    {
        await using ReleaseWorld world = backends.NewWorld(backend);
        ReleaseStore store = await StartAsync(world, "never");
        TestMember alice = world.Member("alice@example.test");

        // The list said never when this post was deposited: its expiry comes first.
        KeyReleaseSeal kept = await world.SealAndDepositAsync(await world.OpensslPostAsync("kept\r\n"), notAfter: DateTimeOffset.UtcNow.AddSeconds(2));
        world.SetListOptions("release-delete=at-expiry");
        await Poll.UntilAsync(() => world.Host!.Service.Directory.TryGetList(ReleaseWorld.List, out MailingList l) && l.GetOption("release-delete") == "at-expiry",
            "the key server's directory cache to see release-delete=at-expiry");
        KeyReleaseSeal swept = await world.SealAndDepositAsync(await world.OpensslPostAsync("swept\r\n"), notAfter: DateTimeOffset.UtcNow.AddSeconds(3));
        Assert.NotNull(await world.FetchAsync(swept.Entry, alice));

        await Poll.UntilAsync(() => store.GetMessage(swept.Entry.MessageIdHex)!.DeletedAt is not null,
            "the sweep to forget the expired post's key material", interval: TimeSpan.FromMilliseconds(200));
        ReleaseRecord forgotten = store.GetMessage(swept.Entry.MessageIdHex)!;
        Assert.Null(forgotten.KeyRecipientInfo);
        Assert.Equal(ReleaseStore.ForgottenAtExpiry, forgotten.DeleteReason);
        Assert.True(forgotten.DeletedAt >= forgotten.NotAfter);
        Assert.Single(store.GetFetches(swept.Entry.MessageIdHex));

        // The sweep that forgot the later post ran after the earlier one expired too: never kept it (and refuses it).
        ReleaseRecord never = store.GetMessage(kept.Entry.MessageIdHex)!;
        Assert.Equal(ReleaseDeletePolicy.Never, never.DeletePolicy);
        Assert.Equal(kept.KeyRecipientInfo, never.KeyRecipientInfo);
        Assert.Null(never.DeletedAt);
        Assert.Null(await world.FetchAsync(kept.Entry, alice));
        Assert.Equal("expired", store.GetAudit(kept.Entry.MessageIdHex)[^1].Reason);
    }

    [Fact]
    public async Task AnAfterAllPostIsForgottenAtExpiryWhenAMemberNeverFetches()
    {
        await using ReleaseWorld world = backends.NewWorld("sqlite");
        ReleaseStore store = await StartAsync(world, "after-all");
        TestMember alice = world.Member("alice@example.test");

        KeyReleaseSeal seal = await world.SealAndDepositAsync(await world.OpensslPostAsync("bob never reads\r\n"), notAfter: DateTimeOffset.UtcNow.AddSeconds(2));
        Assert.NotNull(await world.FetchAsync(seal.Entry, alice));
        await Poll.UntilAsync(() => store.GetMessage(seal.Entry.MessageIdHex)!.DeletedAt is not null,
            "the sweep to forget the expired after-all post", interval: TimeSpan.FromMilliseconds(200));
        Assert.Equal(ReleaseStore.ForgottenAtExpiry, store.GetMessage(seal.Entry.MessageIdHex)!.DeleteReason);
        Assert.Equal(0, store.GetPendingCount(seal.Entry.MessageIdHex));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task TheSweepForgetsWhatIsDueAndNothingElse(string backend)
    {
        // The store alone (no key server), with posts whose expiry and pending members are set outright.
        await using ReleaseWorld world = backends.NewWorld(backend);
        using ReleaseStore store = ReleaseStore.Open(world.DirectoryOptions, TimeProvider.System);
        DateTimeOffset past = DateTimeOffset.UtcNow.AddMinutes(-1), future = DateTimeOffset.UtcNow.AddDays(1);
        string expired = Deposit(store, ReleaseDeletePolicy.AtExpiry, past);
        string expiredNever = Deposit(store, ReleaseDeletePolicy.Never, past);
        string expiredAfterAll = Deposit(store, ReleaseDeletePolicy.AfterAll, past, "alice@example.test");
        string nobodyPending = Deposit(store, ReleaseDeletePolicy.AfterAll, future);
        string pending = Deposit(store, ReleaseDeletePolicy.AfterAll, future, "Alice@Example.test", "alice@example.test", "bob@example.test");
        string current = Deposit(store, ReleaseDeletePolicy.AtExpiry, future);
        Assert.Equal(2, store.GetPendingCount(pending));

        Assert.Equal((2, 1), store.ForgetDue());
        Assert.Equal(ReleaseStore.ForgottenAtExpiry, store.GetMessage(expired)!.DeleteReason);
        Assert.Equal(ReleaseStore.ForgottenAtExpiry, store.GetMessage(expiredAfterAll)!.DeleteReason);
        Assert.Equal(ReleaseStore.ForgottenAfterAll, store.GetMessage(nobodyPending)!.DeleteReason);
        foreach (string held in new[] { expiredNever, pending, current })
        {
            Assert.NotNull(store.GetMessage(held)!.KeyRecipientInfo);
        }

        Assert.Equal((0, 0), store.ForgetDue());
        Assert.True(store.ForgetKey(current, "operator"));
        Assert.False(store.ForgetKey(current, "operator"));
        Assert.Null(store.GetMessage(current)!.KeyRecipientInfo);
    }

    private static string Deposit(ReleaseStore store, ReleaseDeletePolicy delete, DateTimeOffset notAfter, params string[] entitled)
    {
        string id = Convert.ToHexStringLower(KeyReleaseEntry.NewMessageId());
        var record = new ReleaseRecord(id, ReleaseWorld.List, "alice@example.test", 0, [1, 2, 3], new byte[32], new byte[32],
            System.Security.Cryptography.RandomNumberGenerator.GetBytes(300), 32, null, DateTimeOffset.UtcNow, notAfter, null, null) { DeletePolicy = delete };
        Assert.Equal(DepositOutcome.Stored, store.Deposit(record, entitled));
        return id;
    }

    /// <summary>Whether any 32-byte piece of the deposited RecipientInfo (start, middle, end) is still in <paramref name="raw"/>.</summary>
    private static bool ContainsDeposit(byte[] raw, byte[] deposit)
    {
        int[] starts = [0, (deposit.Length / 2) - 16, deposit.Length - 32];
        return starts.Any(s => raw.AsSpan().IndexOf(deposit.AsSpan(s, 32)) >= 0);
    }
}
