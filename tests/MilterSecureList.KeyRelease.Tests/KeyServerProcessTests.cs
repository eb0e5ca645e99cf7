using System.Security.Cryptography;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>The built securelist-keyd as a process: --check-config, and SIGKILL then restart on the same database.</summary>
public sealed class KeyServerProcessTests : IAsyncLifetime
{
    private readonly ReleaseWorld _world = new();
    private TestMember _alice = null!;
    private TestMember _bob = null!;

    public Task InitializeAsync()
    {
        _alice = _world.AddMember("alice@example.test");
        _bob = _world.AddMember("bob@example.test");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _world.DisposeAsync();

    private async Task<ReleaseHttpResponse?> AskAsync(byte[] signed)
    {
        using KeyReleaseClient http = _world.ReaderHttp();
        return await http.ReleaseAsync(_world.Url, signed, CancellationToken.None);
    }

    [Fact]
    public async Task KilledAndRestartedItLosesNoDepositReleaseRevocationOrNonce()
    {
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        KeyReleaseSeal seal;
        await using (KeyServerProcess keyd = await KeyServerProcess.StartAsync(_world.ConfigFile, _world.Port))
        {
            seal = await _world.SealAndDepositAsync(await _world.OpensslPostAsync("durable\r\n"));
            Assert.NotNull(await AskAsync(ReleaseWorld.SignedRequest(seal.Entry, _alice.Address, _alice.Certificate, _alice.Key, nonce)));
            using (ReleaseStore store = ReleaseStore.Open(_world.DirectoryOptions, TimeProvider.System))
            {
                Assert.True(store.Revoke(seal.Entry.MessageIdHex, _bob.Address));
            }

            await keyd.KillAsync();
        }

        await using KeyServerProcess again = await KeyServerProcess.StartAsync(_world.ConfigFile, _world.Port);
        Assert.Null(await AskAsync(ReleaseWorld.SignedRequest(seal.Entry, _alice.Address, _alice.Certificate, _alice.Key, nonce)));
        Assert.Null(await AskAsync(ReleaseWorld.SignedRequest(seal.Entry, _bob.Address, _bob.Certificate, _bob.Key)));
        ReleaseHttpResponse? reply = await AskAsync(ReleaseWorld.SignedRequest(seal.Entry, _alice.Address, _alice.Certificate, _alice.Key));
        Assert.NotNull(reply);
        Assert.False(reply.FirstRelease);
        Assert.Equal("durable\r\n", await _world.OpensslDecryptAsync(KeyReleaseReader.Insert(seal.ContentInfo, reply.RecipientInfo), _alice));
    }

    [Fact]
    public async Task CheckConfigNamesTheFileLineSectionAndKey()
    {
        (int code, string output, _) = await ExternalTool.RunAsync("dotnet", [KeyServerProcess.Dll(), "--check-config", "--config", _world.ConfigFile]);
        Assert.Equal(0, code);
        Assert.Contains("OK", output);

        string bad = Path.Combine(_world.Root, "bad.ini");
        File.WriteAllText(bad, File.ReadAllText(_world.ConfigFile).Replace("RateLimit = 1000", "RateLimit = lots", StringComparison.Ordinal));
        (code, _, string error) = await ExternalTool.RunAsync("dotnet", [KeyServerProcess.Dll(), "--check-config", "--config", bad]);
        Assert.Equal(1, code);
        Assert.Matches(@"^\S*bad\.ini:\d+: \[KeyServer\] RateLimit: ", error.Trim());

        // A release key others can read is refused.
        File.SetUnixFileMode(_world.ReleaseKeyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        (code, _, error) = await ExternalTool.RunAsync("dotnet", [KeyServerProcess.Dll(), "--check-config", "--config", _world.ConfigFile]);
        Assert.Equal(1, code);
        Assert.Contains("[KeyServer] ReleaseKey:", error);
        Assert.Single(error.Trim().Split('\n'));
    }
}
