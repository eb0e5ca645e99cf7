using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Testing;

namespace MilterSecureList.DoubleWrap.Tests;

/// <summary>One run of the double-wrap list life cycle through a real Postfix 3.7 and securelist-milter (run once,
/// then each property is checked by its own test in <see cref="DoubleWrapPostfixTests"/>):
/// owner creates the list (alice, carol, erin RSA; bob EC; dave RSA), pins every member's certificate in its roster,
/// makes epoch 1 and distributes it signed (opened by openssl, imported by every member); dave is removed without
/// rotation; alice posts (signed, epoch 1) through Postfix; an attacker with write access to the directory adds its own
/// certificate for erin; the owner rotates to epoch 2 on its own machine from the member export; alice posts again. Everything the server had is
/// kept for the checks: its database, key directory, log and the daemon's output.</summary>
public sealed class DoubleWrapScenario : IAsyncLifetime
{
    public static readonly string[] Members = ["alice", "bob", "carol"];

    /// <summary>A member whose certificate the attacker duplicates on the server before the rotation.</summary>
    public const string Victim = "erin";

    /// <summary>Everyone who gets a copy of a post: the readers and the attacked member.</summary>
    public static IEnumerable<string> Recipients => Members.Append(Victim);

    private static readonly TimeSpan s_deliveryTimeout = TimeSpan.FromSeconds(120);

    internal DoubleWrapWorld World { get; } = new();

    public string List => DoubleWrapWorld.List;

    public string Key1 { get; private set; } = string.Empty;

    public string Key2 { get; private set; } = string.Empty;

    public byte[] ListKey1 { get; private set; } = [];

    public string ServerCert { get; private set; } = string.Empty;

    public string Dist2 { get; private set; } = string.Empty;

    public string RemoveError { get; private set; } = string.Empty;

    /// <summary>The owner's <c>listkey rotate</c> after the attack: exit code and stderr.</summary>
    public int RotateExitCode { get; private set; } = -1;

    public string RotateError { get; private set; } = string.Empty;

    /// <summary>SHA-256 of the certificate the attacker added for <see cref="Victim"/>.</summary>
    public string InjectedFingerprint { get; private set; } = string.Empty;

    /// <summary>The posts as alice sent them to the list (what the server received).</summary>
    public byte[] Sent1 { get; private set; } = [];

    public byte[] Sent2 { get; private set; } = [];

    public string Text1 { get; private set; } = string.Empty;

    public string Text2 { get; private set; } = string.Empty;

    /// <summary>What smtp-sink received after the milter (one message to all members per post).</summary>
    public SinkMessage Copy1 { get; private set; } = null!;

    public SinkMessage Copy2 { get; private set; } = null!;

    public string Received1 { get; private set; } = string.Empty;

    public string Received2 { get; private set; } = string.Empty;

    public string DaemonOutput { get; private set; } = string.Empty;

    public string DaemonDirectory { get; private set; } = string.Empty;

    public string MailLog { get; private set; } = string.Empty;

    public int DaemonExitCode { get; private set; } = -1;

    public async Task InitializeAsync()
    {
        ExternalTool.RequireRoot("a throwaway Postfix instance");
        string openssl = ExternalTool.Require("openssl", "openssl");
        DoubleWrapWorld world = World;

        world.CliOk("list", "create", List, "--mode", "double", "--owner", "owner@dw.test");
        await world.MakeMemberAsync("owner", ec: false);
        foreach (string m in Members.Append("dave").Append(Victim))
        {
            await world.MakeMemberAsync(m, ec: m == "bob");
            world.CliOk("member", "add", List, DoubleWrapWorld.Address(m), "--cert", world.Cert(m));
            // The owner pins the certificate each member handed over (docs/double-wrap.md §3.1).
            world.OwnerCliOk("listkey", "roster", "accept", List, DoubleWrapWorld.Address(m), "--roster", world.Roster, "--cert", world.Cert(m));
        }

        ServerCert = Path.Combine(world.OwnerDir, "server.pem");
        await File.WriteAllTextAsync(ServerCert, world.CliOk("list", "export-cert", List).Output);

        // Epoch 1: owner-signed S/MIME key messages, opened by openssl alone, then imported by each member, whose
        // first import pins the owner's certificate.
        world.CliOk("member", "export", List, "--out", world.Members);
        Key1 = Path.Combine(world.OwnerDir, "epoch1.key");
        world.OwnerCliOk("listkey", "new", List, "--out", Key1, "--epoch", "1");
        string dist1 = Path.Combine(world.OwnerDir, "dist1");
        world.OwnerCliOk(["listkey", "distribute", List, "--list-key", Key1, "--out", dist1, .. world.OwnerSigning]);
        foreach (string m in Members.Append("dave").Append(Victim))
        {
            string message = Path.Combine(dist1, DoubleWrapWorld.Address(m) + ".eml");
            Assert.True(File.Exists(message), $"no key message for {m}");
            (int code, string plain, string err) = await ExternalTool.RunAsync(openssl,
                ["cms", "-decrypt", "-recip", world.Cert(m), "-inkey", world.Key(m), "-in", message]);
            Assert.True(code == 0, $"openssl cannot open {m}'s key message: {err}");
            Assert.Contains($"List: {List}", plain, StringComparison.Ordinal);
            Assert.Contains("pinned the owner certificate", world.CliOk("listkey", "import", "--cert", world.Cert(m), "--key", world.Key(m),
                "--in", message, "--out", world.ListKeys(m)).Output, StringComparison.Ordinal);
        }

        using (ListKeyFile k = ListKeyFile.Load(Key1))
        {
            ListKey1 = (byte[])k.Key.Clone();
        }

        // Dave leaves before the first post; no rotation yet (the owner is reminded).
        RemoveError = world.CliOk("member", "remove", List, DoubleWrapWorld.Address("dave")).Error;

        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\nSocketMode = 0666\n" + world.ConfigBody);
        DaemonDirectory = daemon.Directory;
        IEnumerable<string> mainCf = File.ReadAllLines(Path.Combine(DaemonProcess.RepositoryRoot(), "contrib/postfix/main.cf.snippet"))
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Replace("@SOCKET@", daemon.Socket, StringComparison.Ordinal)
                .Replace("@LISTDOMAIN@", DoubleWrapWorld.ListDomain, StringComparison.Ordinal)
                .Replace("relay_domains = $relay_domains, ", "relay_domains = ", StringComparison.Ordinal));
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket, mainCf);

        (Sent1, Text1) = Post("first", Key1);
        Assert.Equal(250, (await postfix.SendAsync(DoubleWrapWorld.Address("alice"), [List], Sent1)).Code);
        Copy1 = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_deliveryTimeout));
        Received1 = Path.Combine(world.Root, "received1.eml");
        await File.WriteAllTextAsync(Received1, Copy1.Headers + "\n" + Copy1.Body);

        // The attack (docs/double-wrap.md §3.1): whoever can write the directory adds a certificate of its own for
        // erin that expires later than hers, so the server now prefers it, and waits for the owner's next rotation.
        await world.MakeMemberAsync("mallory", ec: false, address: DoubleWrapWorld.Address(Victim), days: 90);
        world.CliOk("member", "set", List, DoubleWrapWorld.Address(Victim), "--add-cert", world.Cert("mallory"));
        (_, string fingerprint, _) = await ExternalTool.RunAsync(openssl, ["x509", "-in", world.Cert("mallory"), "-noout", "-fingerprint", "-sha256"]);
        InjectedFingerprint = fingerprint.Trim().Split('=')[1];

        // Rotation, the documented owner flow: the server exports the members, the owner rotates on its own machine
        // (dave unpinned) and signs epoch 2 for the pinned members only.
        world.CliOk("member", "export", List, "--out", world.Members);
        CliRun rotate = world.OwnerCli(["listkey", "rotate", List, "--list-key", Key1, "--remove", DoubleWrapWorld.Address("dave"), .. world.OwnerSigning]);
        RotateExitCode = rotate.ExitCode;
        RotateError = rotate.Error;
        Assert.Contains("epoch 2", rotate.Output, StringComparison.Ordinal);
        Key2 = Path.Combine(world.OwnerDir, ListKeyDirectory.FileName(List, 2));
        Dist2 = Path.Combine(world.OwnerDir, Path.GetFileNameWithoutExtension(Key2) + ".messages");
        foreach (string m in Members.Append(Victim))
        {
            world.CliOk("listkey", "import", "--cert", world.Cert(m), "--key", world.Key(m),
                "--in", Path.Combine(Dist2, DoubleWrapWorld.Address(m) + ".eml"), "--out", world.ListKeys(m));
        }

        // The daemon must have read the injected certificate before the second post, or that post would not show what
        // the attacker gets: SIGHUP re-reads the directory at once, instead of waiting for the cache's next poll.
        Assert.Contains("reloaded", await daemon.ReloadAsync(), StringComparison.Ordinal);
        (Sent2, Text2) = Post("second", Key2);
        Assert.Equal(250, (await postfix.SendAsync(DoubleWrapWorld.Address("alice"), [List], Sent2)).Code);
        IReadOnlyList<SinkMessage> got = await postfix.WaitForSinkMessagesAsync(2, s_deliveryTimeout);
        Copy2 = Assert.Single(got, g => g.File != Copy1.File);
        Received2 = Path.Combine(world.Root, "received2.eml");
        await File.WriteAllTextAsync(Received2, Copy2.Headers + "\n" + Copy2.Body);

        MailLog = postfix.ReadMailLog();
        DaemonExitCode = await daemon.StopAsync(); // flushes the log
        DaemonOutput = daemon.Output;
    }

    public Task DisposeAsync()
    {
        World.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Alice's post: a text entity, signed with her key and double-wrapped by securelist encrypt.</summary>
    private (byte[] Message, string Text) Post(string tag, string listKey)
    {
        string text = $"The {tag} secret post: meeting moved to Thursday. {Guid.NewGuid():N}";
        string input = Path.Combine(World.MemberDir("alice"), tag + ".txt");
        File.WriteAllText(input, $"From: {DoubleWrapWorld.Address("alice")}\r\nTo: {List}\r\nSubject: {tag}\r\n"
            + $"Message-Id: <{Guid.NewGuid():N}@dw.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n");
        string output = Path.Combine(World.MemberDir("alice"), tag + ".eml");
        World.CliOk("encrypt", "--to", List, "--list-key", listKey, "--server-cert", ServerCert, "--in", input, "--out", output,
            "--sign-cert", World.Cert("alice"), "--sign-key", World.Key("alice"));
        return (File.ReadAllBytes(output), text);
    }

    /// <summary>The server's certificate and private key, as an attacker who owns the server has them.</summary>
    internal (X509Certificate2 Cert, AsymmetricAlgorithm Key) ServerKey() => World.ServerKey();

    /// <summary>Every file of the server's state: database, key directory, log, configuration, daemon directory.</summary>
    internal IEnumerable<string> ServerStateFiles() => World.ServerFiles()
        .Concat(System.IO.Directory.Exists(DaemonDirectory)
            ? System.IO.Directory.EnumerateFiles(DaemonDirectory).Where(f => !f.EndsWith(".sock", StringComparison.Ordinal))
            : []);
}
