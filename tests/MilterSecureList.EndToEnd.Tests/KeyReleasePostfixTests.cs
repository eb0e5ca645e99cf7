using MilterSecureList.EndToEnd.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// A key-release list (docs/key-release.md) behind a real Postfix: the milter deposits each post's key with
/// securelist-keyd (the built binary, TLS on loopback, the same SQLite directory) and the members fetch it with
/// <c>securelist release fetch</c>; openssl reads what they wrote.
/// </summary>
public sealed class KeyReleaseWorld : ListWorld
{
    public const string Release = "release@" + Domain;   // alice, carol; release=on

    public KeyServerFiles KeyServer { get; private set; } = null!;

    public KeyServerProcess? Keyd { get; private set; }

    public string KeydIni => Path.Combine(Dir, "keyd.ini");

    protected override bool Full => false;

    protected override async Task CreateMoreAsync()
    {
        await CreateListAsync(Release, "alice", "carol");
        await SecureListCli.MustRunAsync(Config, "list", "set", Release, "--option", "release=on");
        KeyServer = new KeyServerFiles(Dir);
        await File.WriteAllTextAsync(KeydIni, KeyServer.KeydIni($"Provider = sqlite\nPath = {Dir}/lists.db"));
        // The daemon reads milter.ini after this hook: give it the key server.
        await File.AppendAllTextAsync(Config, KeyServer.MilterSection);
        await StartKeydAsync();
    }

    public async Task StartKeydAsync() => Keyd = await KeyServerProcess.StartAsync(KeydIni, KeyServer.Port);

    public async Task StopKeydAsync()
    {
        if (Keyd is not null)
        {
            await Keyd.DisposeAsync();
            Keyd = null;
        }
    }

    public override async Task DisposeAsync()
    {
        await StopKeydAsync();
        await base.DisposeAsync();
    }
}

[Trait("Category", "EndToEnd")]
public sealed class KeyReleasePostfixTests(KeyReleaseWorld world) : IClassFixture<KeyReleaseWorld>
{
    private async Task<string> FetchAsync(Identity member, string received, string output, int expectedExit = 0)
    {
        (int code, string o, string e) = await SecureListCli.RunAsync(world.Config, "release", "fetch", "--cert", member.CertPath, "--key", member.KeyPath,
            "--in", received, "--out", output, "--server-cert", world.KeyServer.TlsCertificate);
        Assert.True(code == expectedExit, $"release fetch exited {code}: {e}{o}");
        return o + e;
    }

    [Fact]
    public async Task A_post_through_Postfix_is_readable_by_members_only_after_they_fetch_its_key()
    {
        const string subject = "release post 1";
        string post = await world.OpensslPostAsync(world["bob"].Address, KeyReleaseWorld.Release, subject,
            Smime.Entity("the board meets on friday"), [world.ListCert(KeyReleaseWorld.Release)]);
        Swaks sent = await world.SendAsync(world["bob"].Address, [KeyReleaseWorld.Release], post);
        Assert.True(sent.Accepted, sent.ToString());

        SinkMessage m = Assert.Single(await world.ReceivedAsync(subject));
        Assert.Contains("X-SecureList-Release: ", m.Headers, StringComparison.Ordinal);
        // As delivered nobody can read it: no member RecipientInfo, only the release entry.
        Assert.Null(await world.OpensslDecryptAsync(m, world["alice"]));
        string received = world.Save(m);

        string readable = Path.Combine(world.Dir, "alice-readable.eml");
        await FetchAsync(world["alice"], received, readable);
        (int rc, string plain, string err) = await ExternalTool.RunAsync("openssl", ["cms", "-decrypt", "-in", readable, "-recip", world["alice"].CertPath, "-inkey", world["alice"].KeyPath]);
        Assert.True(rc == 0, err);
        Assert.Contains("the board meets on friday", plain);

        // mallory is no member: refused (exit 3), nothing written.
        string malloryOut = Path.Combine(world.Dir, "mallory-readable.eml");
        await FetchAsync(world["mallory"], received, malloryOut, expectedExit: 3);
        Assert.False(File.Exists(malloryOut));

        // carol is removed after the post: her later request for it is refused once the key server has seen the change.
        await SecureListCli.MustRunAsync(world.Config, "member", "remove", KeyReleaseWorld.Release, world["carol"].Address);
        string carolOut = Path.Combine(world.Dir, "carol-readable.eml");
        string lastAnswer = string.Empty;
        bool carolServedEarly = false;
        await Poll.UntilAsync(
            async () =>
            {
                (int code, string o, string e) = await SecureListCli.RunAsync(world.Config, "release", "fetch", "--cert", world["carol"].CertPath, "--key", world["carol"].KeyPath,
                    "--in", received, "--out", carolOut, "--server-cert", world.KeyServer.TlsCertificate);
                lastAnswer = $"exit {code}: {e}{o}";
                if (code == 3)
                {
                    return true;
                }

                // Served before the key server's cache saw the removal: that fetch counts in the status below, and
                // the next try must not find its output.
                carolServedEarly |= code == 0;
                File.Delete(carolOut);
                return false;
            },
            "the key server to refuse carol after her removal (release fetch exit 3)",
            TimeSpan.FromSeconds(30),
            TimeSpan.FromMilliseconds(500), // each try runs the CLI; no need to spin faster than the server's 1 s cache refresh
            () => "last answer: " + lastAnswer);
        Assert.False(File.Exists(carolOut));

        string id = m.Headers.Split('\n').First(l => l.StartsWith("X-SecureList-Release: ", StringComparison.Ordinal))["X-SecureList-Release: ".Length..].Split(' ')[0];
        string status = await SecureListCli.MustRunAsync(world.Config, "release", "status", id);
        Assert.Contains("alice@e2e.test", status);
        Assert.Contains(carolServedEarly ? "2 member(s) fetched" : "1 member(s) fetched", status);
    }

    [Fact]
    public async Task With_the_key_server_down_the_post_is_tempfailed_and_nothing_is_delivered()
    {
        const string subject = "release post while keyd is down";
        await world.StopKeydAsync();
        try
        {
            string post = await world.OpensslPostAsync(world["bob"].Address, KeyReleaseWorld.Release, subject,
                Smime.Entity("must not leave"), [world.ListCert(KeyReleaseWorld.Release)]);
            Swaks sent = await world.SendAsync(world["bob"].Address, [KeyReleaseWorld.Release], post);
            Assert.False(sent.Accepted, sent.ToString());
            Assert.Contains(sent.ServerLines, l => l.Contains("451 4.3.0", StringComparison.Ordinal) && l.Contains("key server", StringComparison.Ordinal));
            Assert.Empty(world.ReceivedNow(subject));
            await world.WaitForMilterLogAsync("key server failure, tempfail");
        }
        finally
        {
            await world.StartKeydAsync();
        }
    }
}
