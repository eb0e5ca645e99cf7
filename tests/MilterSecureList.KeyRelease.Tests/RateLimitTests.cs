using MilterSecureList.Cms.KeyRelease;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>[KeyServer] RateLimit counts a member's proven requests only.</summary>
public sealed class RateLimitTests : IAsyncLifetime
{
    private readonly ReleaseWorld _world = new();

    public async Task InitializeAsync()
    {
        _world.AddMember("alice@example.test");
        _world.AddMember("bob@example.test");
        File.WriteAllText(_world.ConfigFile, File.ReadAllText(_world.ConfigFile).Replace("RateLimit = 1000", "RateLimit = 2", StringComparison.Ordinal));
        await _world.StartAsync();
    }

    public async Task DisposeAsync() => await _world.DisposeAsync();

    [Fact]
    public async Task AMembersThirdRequestInAMinuteIsRefusedAndForgeriesInTheirNameDoNotCount()
    {
        TestMember alice = _world.Member("alice@example.test");
        TestMember bob = _world.Member("bob@example.test");
        KeyReleaseSeal seal = await _world.SealAndDepositAsync(await _world.OpensslPostAsync("limited\r\n"));
        using KeyReleaseClient http = _world.ReaderHttp();

        // The first minute boundary must not fall between the requests: start right after one.
        int second = DateTimeOffset.UtcNow.Second;
        if (second > 40)
        {
            await Task.Delay(TimeSpan.FromSeconds(61 - second));
        }

        for (int i = 0; i < 3; i++)
        {
            Assert.Null(await http.ReleaseAsync(_world.Url, ReleaseWorld.SignedRequest(seal.Entry, alice.Address, bob.Certificate, bob.Key), CancellationToken.None));
        }

        Assert.NotNull(await http.ReleaseAsync(_world.Url, ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key), CancellationToken.None));
        Assert.NotNull(await http.ReleaseAsync(_world.Url, ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key), CancellationToken.None));
        Assert.Null(await http.ReleaseAsync(_world.Url, ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key), CancellationToken.None));
        Assert.Contains(_world.Host!.Service.Store.GetAudit(seal.Entry.MessageIdHex), a => a.Reason == "rate-limit");
        // Another member's allowance is separate.
        Assert.NotNull(await http.ReleaseAsync(_world.Url, ReleaseWorld.SignedRequest(seal.Entry, bob.Address, bob.Certificate, bob.Key), CancellationToken.None));
    }
}
