using System.Security.Cryptography;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>The built securelist-keyd as a process: --check-config, and SIGKILL then restart on the same database (SQLite
/// and PostgreSQL).</summary>
[Collection(ReleaseBackends.Name)]
public sealed class KeyServerProcessTests(ReleaseBackends backends)
{
    public static TheoryData<string> Backends => ReleaseBackends.Names;

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task KilledAndRestartedItLosesNoDepositReleaseRevocationOrNonce(string backend)
    {
        await using ReleaseWorld world = backends.NewWorld(backend);
        TestMember alice = world.AddMember("alice@example.test");
        TestMember bob = world.AddMember("bob@example.test");
        byte[] nonce = RandomNumberGenerator.GetBytes(32);
        KeyReleaseSeal seal;
        await using (KeyServerProcess keyd = await KeyServerProcess.StartAsync(world.ConfigFile, world.Port))
        {
            seal = await world.SealAndDepositAsync(await world.OpensslPostAsync("durable\r\n"));
            Assert.NotNull(await world.AskAsync(ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key, nonce)));
            using (ReleaseStore store = ReleaseStore.Open(world.DirectoryOptions, TimeProvider.System))
            {
                Assert.True(store.Revoke(seal.Entry.MessageIdHex, bob.Address));
            }

            await keyd.KillAsync();
        }

        await using KeyServerProcess again = await KeyServerProcess.StartAsync(world.ConfigFile, world.Port);
        Assert.Null(await world.AskAsync(ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key, nonce)));
        Assert.Null(await world.AskAsync(ReleaseWorld.SignedRequest(seal.Entry, bob.Address, bob.Certificate, bob.Key)));
        ReleaseHttpResponse? reply = await world.AskAsync(ReleaseWorld.SignedRequest(seal.Entry, alice.Address, alice.Certificate, alice.Key));
        Assert.NotNull(reply);
        Assert.False(reply.FirstRelease);
        Assert.Equal("durable\r\n", await world.OpensslDecryptAsync(KeyReleaseReader.Insert(seal.ContentInfo, reply.RecipientInfo), alice));
    }

    [Fact]
    public async Task CheckConfigNamesTheFileLineSectionAndKey()
    {
        await using ReleaseWorld world = backends.NewWorld("sqlite");
        (int code, string output, _) = await ExternalTool.RunAsync("dotnet", [KeyServerProcess.Dll(), "--check-config", "--config", world.ConfigFile]);
        Assert.Equal(0, code);
        Assert.Contains("OK", output);

        string bad = Path.Combine(world.Root, "bad.ini");
        File.WriteAllText(bad, File.ReadAllText(world.ConfigFile).Replace("RateLimit = 1000", "RateLimit = lots", StringComparison.Ordinal));
        (code, _, string error) = await ExternalTool.RunAsync("dotnet", [KeyServerProcess.Dll(), "--check-config", "--config", bad]);
        Assert.Equal(1, code);
        Assert.Matches(@"^\S*bad\.ini:\d+: \[KeyServer\] RateLimit: ", error.Trim());

        // A release key others can read is refused.
        File.SetUnixFileMode(world.ReleaseKeyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        (code, _, error) = await ExternalTool.RunAsync("dotnet", [KeyServerProcess.Dll(), "--check-config", "--config", world.ConfigFile]);
        Assert.Equal(1, code);
        Assert.Contains("[KeyServer] ReleaseKey:", error);
        Assert.Single(error.Trim().Split('\n'));
    }

    /// <summary>
    /// The key server holds the release key and every deposit, so, like the milter, it marks itself non-dumpable: the
    /// kernel writes no core file, and its /proc files belong to root although it runs as another user.
    /// </summary>
    [Fact]
    public async Task KeyServerRunningAsAnotherUserIsNotDumpable()
    {
        await using ReleaseWorld world = backends.NewWorld("sqlite");
        (int chowned, _, string chownError) = await ExternalTool.RunAsync("chown", ["-R", "nobody:nogroup", world.Root]);
        Assert.True(chowned == 0, chownError);
        await using KeyServerProcess keyd = await KeyServerProcess.StartAsync(world.ConfigFile, world.Port, runAs: ("nobody", "nogroup"));

        string uidLine = File.ReadAllLines($"/proc/{keyd.ProcessId}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.Equal("65534", uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
        (int rc, string owner, _) = await ExternalTool.RunAsync("stat", ["-c", "%u", $"/proc/{keyd.ProcessId}/environ"]);
        Assert.Equal(0, rc);
        Assert.Equal("0", owner.Trim()); // a dumpable process's /proc files belong to its own user
    }
}
