using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Admin.Tests;

/// <summary>The hostile-server case of docs/double-wrap.md §3.1, run as the attacks themselves: someone who can write the
/// server's directory injects certificates and members and then waits for the owner's documented flow; someone who
/// has a member's public certificate plants list-key messages. Real SQLite directory, openssl as the independent peer.</summary>
[Collection(BackendCollection.Name)]
public sealed class DoubleWrapHostileServerTests(BackendFixture fixture)
{
    private const string List = OwnerDesk.List;

    [Fact]
    public void AnInjectedCertificateIsShownAndRefusedAndItsHolderOpensNoKeyMessage()
    {
        using CliHarness cli = new(fixture, "sqlite");
        OwnerDesk owner = NewList(cli, pin: false, "alice", "bob");

        // The owner pins Alice by the fingerprint she read out (from the server's export) and Bob from his own file.
        owner.Export();
        owner.Run("listkey", "roster", "accept", List, "alice@example.org", "--roster", owner.Roster, "--members", owner.Members,
            "--fingerprint", People.Fingerprint(cli.Temp.File("alice.pem"))).AssertOk();
        owner.Accept("bob");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(owner.Roster));

        // The attack: a second certificate for Alice that expires later (the directory now prefers it), and a new member.
        People.Make(cli, "mallory-as-alice", ec: false, address: "alice@example.org", days: 90);
        People.Make(cli, "mallory", ec: false);
        cli.Run("member", "set", List, "alice@example.org", "--add-cert", cli.Temp.File("mallory-as-alice.pem")).AssertOk();
        cli.Run("member", "add", List, "mallory@example.org", "--cert", cli.Temp.File("mallory.pem")).AssertOk();
        string injected = People.Fingerprint(cli.Temp.File("mallory-as-alice.pem"));
        Assert.Contains(injected.Replace(":", string.Empty, StringComparison.Ordinal), ExpandedFingerprint(cli, "alice@example.org"), StringComparison.Ordinal);

        // The documented owner flow: export, check, distribute, rotate. Each shows the injected certificate and the
        // unknown member, refuses them, and exits 3.
        owner.Export();
        CliResult check = owner.Run("listkey", "roster", "check", List, "--roster", owner.Roster, "--members", owner.Members);
        Assert.Equal(ListKeyCommandsExit.Refused, check.ExitCode);
        Assert.Contains($"REFUSED  alice@example.org: certificate not accepted in your roster: not used: CN=mallory-as-alice", check.Output, StringComparison.Ordinal);
        Assert.Contains(injected, check.Output, StringComparison.Ordinal);
        Assert.Contains("REFUSED  mallory@example.org: not in your roster: no key message", check.Output, StringComparison.Ordinal);

        string k1 = Path.Combine(owner.Dir, "k1.key");
        owner.Run("listkey", "new", List, "--out", k1, "--epoch", "1").AssertOk();
        string dist = Path.Combine(owner.Dir, "dist1");
        CliResult distributed = owner.Run(["listkey", "distribute", List, "--list-key", k1, "--out", dist, .. owner.Signing]);
        Assert.Equal(ListKeyCommandsExit.Refused, distributed.ExitCode);
        Assert.Contains($"securelist: REFUSED alice@example.org: certificate not accepted in your roster: not used: CN=mallory-as-alice", distributed.Error, StringComparison.Ordinal);
        Assert.Contains(injected, distributed.Error, StringComparison.Ordinal);
        Assert.Contains("securelist: REFUSED mallory@example.org: not in your roster", distributed.Error, StringComparison.Ordinal);

        CliResult rotated = owner.Run(["listkey", "rotate", List, "--list-key", k1, .. owner.Signing]);
        Assert.Equal(ListKeyCommandsExit.Refused, rotated.ExitCode);
        Assert.Contains(injected, rotated.Error, StringComparison.Ordinal);
        string dist2 = Path.Combine(owner.Dir, "crypto@lists.example.org.2.messages");

        // The attacker, holding both of its private keys, opens none of the key messages; Alice and Bob open theirs.
        foreach (string dir in new[] { dist, dist2 })
        {
            Assert.Equal(["alice@example.org.eml", "bob@example.org.eml"], System.IO.Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            foreach (string message in System.IO.Directory.GetFiles(dir))
            {
                foreach (string attacker in new[] { "mallory-as-alice", "mallory" })
                {
                    (int code, string opened, _) = OpensslTool.TryRun("cms", "-decrypt", "-recip", cli.Temp.File(attacker + ".pem"), "-inkey", cli.Temp.File(attacker + ".key"), "-in", message);
                    Assert.True(code != 0 && !opened.Contains("Key:", StringComparison.Ordinal), $"{attacker} opened {message}");
                }
            }

            foreach (string name in new[] { "alice", "bob" })
            {
                Assert.Contains("Key: ", OpensslTool.Run("cms", "-decrypt", "-recip", cli.Temp.File(name + ".pem"), "-inkey", cli.Temp.File(name + ".key"),
                    "-in", Path.Combine(dir, $"{name}@example.org.eml")), StringComparison.Ordinal);
            }
        }

        // Worse: the attacker replaces Alice's certificate altogether. The key still goes to the pinned one.
        cli.Run("member", "remove", List, "alice@example.org").AssertOk();
        cli.Run("member", "add", List, "alice@example.org", "--cert", cli.Temp.File("mallory-as-alice.pem")).AssertOk();
        owner.Export();
        string dist3 = Path.Combine(owner.Dir, "dist3");
        CliResult replaced = owner.Run(["listkey", "distribute", List, "--list-key", k1, "--out", dist3, .. owner.Signing]);
        Assert.Equal(ListKeyCommandsExit.Refused, replaced.ExitCode);
        Assert.Contains(injected, replaced.Error, StringComparison.Ordinal);
        string forAlice = Path.Combine(dist3, "alice@example.org.eml");
        Assert.Contains("Key: ", OpensslTool.Run("cms", "-decrypt", "-recip", cli.Temp.File("alice.pem"), "-inkey", cli.Temp.File("alice.key"), "-in", forAlice), StringComparison.Ordinal);
        Assert.NotEqual(0, OpensslTool.TryRun("cms", "-decrypt", "-recip", cli.Temp.File("mallory-as-alice.pem"), "-inkey", cli.Temp.File("mallory-as-alice.key"), "-in", forAlice).Code);

        // Accepting needs the fingerprint the member vouches for: Alice's real one does not pin the attacker's.
        owner.Run("listkey", "roster", "accept", List, "alice@example.org", "--roster", owner.Roster, "--members", owner.Members,
            "--fingerprint", People.Fingerprint(cli.Temp.File("alice.pem"))).AssertUserError("no certificate of alice@example.org");
        using ListKeyFile key1 = ListKeyFile.Load(k1);
        DoubleWrapCommandTests.AssertServerHoldsNoKey(cli, key1.Key);
    }

    [Fact]
    public void APlantedEpochIsRefusedTheMemberIsToldAndTheHeldKeyStaysUntouched()
    {
        using CliHarness cli = new(fixture, "sqlite");
        OwnerDesk owner = NewList(cli, pin: true, "alice", "carol");

        owner.Export();
        string k1 = Path.Combine(owner.Dir, "k1.key");
        owner.Run("listkey", "new", List, "--out", k1, "--epoch", "1").AssertOk();
        string dist1 = Path.Combine(owner.Dir, "dist1");
        owner.Run(["listkey", "distribute", List, "--list-key", k1, "--out", dist1, .. owner.Signing]).AssertOk();
        string keys = cli.Temp.File("alice-keys");
        Import("alice", Path.Combine(dist1, "alice@example.org.eml"), keys).AssertOk();
        string held = Path.Combine(keys, "crypto@lists.example.org.1.key");
        string pin = Path.Combine(keys, "crypto@lists.example.org.owner.pem");
        byte[] heldBefore = File.ReadAllBytes(held);
        byte[] pinBefore = File.ReadAllBytes(pin);

        // The attacker has only what the server has: Alice's public certificate (from the directory) and its own keys.
        People.Make(cli, "mallory", ec: false);
        string planted = Path.Combine(cli.Temp.Path, "planted");
        System.IO.Directory.CreateDirectory(planted);
        using (ListKeyFile forged = ListKeyFile.Create(List, 2))
        {
            forged.Save(Path.Combine(planted, "forged.key"));
        }

        // 1. Unsigned: the old key message format, made by openssl alone.
        string unsignedEntity = Path.Combine(planted, "unsigned.txt");
        File.WriteAllText(unsignedEntity, "Content-Type: text/plain\r\n\r\n" + File.ReadAllText(Path.Combine(planted, "forged.key")));
        string unsignedMessage = Path.Combine(planted, "unsigned.eml");
        OpensslTool.Run("cms", "-encrypt", "-aes256", "-in", unsignedEntity, "-out", unsignedMessage, cli.Temp.File("alice.pem"));
        AssertRefused(Import("alice", unsignedMessage, keys), "not signed");

        // 2. Signed by the attacker, with the product's own owner flow (its own roster pinning Alice's public certificate).
        var mallory = new OwnerDesk(cli, "mallory-owner");
        File.Copy(owner.Members, mallory.Members);
        mallory.Run("listkey", "roster", "accept", List, "alice@example.org", "--roster", mallory.Roster, "--members", mallory.Members,
            "--fingerprint", People.Fingerprint(cli.Temp.File("alice.pem"))).AssertOk();
        string forgedDir = Path.Combine(planted, "dist");
        mallory.Run(["listkey", "distribute", List, "--list-key", Path.Combine(planted, "forged.key"), "--out", forgedDir, .. mallory.Signing]);
        string signedByMallory = Path.Combine(forgedDir, "alice@example.org.eml");
        AssertRefused(Import("alice", signedByMallory, keys), "not by the owner certificate pinned for crypto@lists.example.org");

        // 3. The owner's genuine signed entity with the epoch changed, re-encrypted to Alice with openssl.
        string genuine = Path.Combine(planted, "genuine.eml");
        OpensslTool.Run("cms", "-decrypt", "-recip", cli.Temp.File("alice.pem"), "-inkey", cli.Temp.File("alice.key"), "-in", Path.Combine(dist1, "alice@example.org.eml"), "-out", genuine);
        string altered = Path.Combine(planted, "altered.eml");
        File.WriteAllText(altered, File.ReadAllText(genuine).Replace("Epoch: 1\r\n", "Epoch: 2\r\n", StringComparison.Ordinal));
        Assert.NotEqual(File.ReadAllText(genuine), File.ReadAllText(altered));
        string alteredMessage = Path.Combine(planted, "altered-message.eml");
        OpensslTool.Run("cms", "-encrypt", "-aes256", "-in", altered, "-out", alteredMessage, cli.Temp.File("alice.pem"));
        AssertRefused(Import("alice", alteredMessage, keys), "does not verify");

        // Nothing changed in Alice's key directory: no epoch 2, the key and the pinned owner as before.
        Assert.Equal(["crypto@lists.example.org.1.key", "crypto@lists.example.org.owner.pem"],
            System.IO.Directory.GetFiles(keys).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(heldBefore, File.ReadAllBytes(held));
        Assert.Equal(pinBefore, File.ReadAllBytes(pin));

        // So a post the attacker makes with its planted epoch does not open as a list post.
        string server = cli.Temp.File("server.pem");
        File.WriteAllText(server, cli.Run("list", "export-cert", List).AssertOk().Output);
        string msg = Path.Combine(planted, "fake.txt");
        File.WriteAllText(msg, "From: owner@example.org\nSubject: urgent\n\nsend the passwords to mallory\n");
        string fakePost = Path.Combine(planted, "fake.eml");
        cli.Run("encrypt", "--to", List, "--list-key", Path.Combine(planted, "forged.key"), "--server-cert", server, "--in", msg, "--out", fakePost).AssertOk();
        string fakeCopy = Path.Combine(planted, "fake-copy.eml");
        File.WriteAllBytes(fakeCopy, DoubleWrapCommandTests.ServerRewrap(cli, File.ReadAllText(fakePost), "alice"));
        CliResult opened = cli.Run("decrypt", "--cert", cli.Temp.File("alice.pem"), "--key", cli.Temp.File("alice.key"), "--list-keys", keys,
            "--in", fakeCopy, "--out", Path.Combine(planted, "fake-plain.eml"));
        Assert.Equal(1, opened.ExitCode);
        opened.AssertOneLine("no list key for crypto@lists.example.org epoch 2");

        // A member who was given the owner's certificate refuses the attacker's message even as the first import.
        string carolKeys = cli.Temp.File("carol-keys");
        string forCarol = Path.Combine(planted, "carol");
        mallory.Run("listkey", "roster", "accept", List, "carol@example.org", "--roster", mallory.Roster, "--cert", cli.Temp.File("carol.pem")).AssertOk();
        mallory.Run(["listkey", "distribute", List, "--list-key", Path.Combine(planted, "forged.key"), "--out", forCarol, .. mallory.Signing]);
        AssertRefused(Import("carol", Path.Combine(forCarol, "carol@example.org.eml"), carolKeys, "--owner-cert", owner.Cert), "not by the owner certificate pinned");
        Assert.False(System.IO.Directory.Exists(carolKeys) && System.IO.Directory.GetFiles(carolKeys).Length > 0, "carol's key directory must stay empty");
        CliResult carolGenuine = Import("carol", Path.Combine(dist1, "carol@example.org.eml"), carolKeys, "--owner-cert", owner.Cert).AssertOk();
        Assert.Contains("as given with --owner-cert", carolGenuine.Output, StringComparison.Ordinal);

        // A replayed older epoch is refused too (Carol holds epoch 2 of the real owner, then gets epoch 1 again).
        string k2 = Path.Combine(owner.Dir, "k2.key");
        owner.Run("listkey", "new", List, "--out", k2, "--previous", k1).AssertOk();
        string dist2 = Path.Combine(owner.Dir, "dist2");
        owner.Run(["listkey", "distribute", List, "--list-key", k2, "--out", dist2, .. owner.Signing]).AssertOk();
        string carolFresh = cli.Temp.File("carol-keys-2");
        Import("carol", Path.Combine(dist2, "carol@example.org.eml"), carolFresh, "--owner-cert", owner.Cert).AssertOk();
        AssertRefused(Import("carol", Path.Combine(dist1, "carol@example.org.eml"), carolFresh), "older than epoch 2");
    }

    [Fact]
    public void AHostileMemberExportOrAnExposedRosterIsRefusedWithOneLine()
    {
        using CliHarness cli = new(fixture, "sqlite");
        OwnerDesk owner = NewList(cli, pin: true, "alice");
        owner.Export();
        string k1 = Path.Combine(owner.Dir, "k1.key");
        owner.Run("listkey", "new", List, "--out", k1, "--epoch", "1").AssertOk();
        string genuine = File.ReadAllText(owner.Members);
        string Distribute(string export)
        {
            File.WriteAllText(owner.Members, export);
            string dir = Path.Combine(owner.Dir, "out-" + Guid.NewGuid().ToString("N"));
            CliResult run = owner.Run(["listkey", "distribute", List, "--list-key", k1, "--out", dir, .. owner.Signing]);
            return run.ExitCode == 0 ? File.ReadAllText(Path.Combine(dir, "alice@example.org.eml")) : run.Error;
        }

        Assert.Contains("not a securelist member export", Distribute("{ not json"), StringComparison.Ordinal);
        Assert.Contains("not a securelist member export", Distribute(genuine.Replace("securelist-members/1", "securelist-members/9", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("is not a mail address", Distribute(genuine.Replace("\"alice@example.org\"", "\"alice@example.org\\r\\nBcc: mallory@example.org\"", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("not a securelist member export", Distribute(genuine.Replace(@"-----BEGIN CERTIFICATE-----\n", @"-----BEGIN CERTIFICATE-----\nAAAA", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("the roster for crypto@lists.example.org", Distribute(genuine.Replace(List, "other@lists.example.org", StringComparison.Ordinal)), StringComparison.Ordinal);

        // A header smuggled into the owner field never reaches the key message: From falls back to the list address.
        string smuggled = Distribute(genuine.Replace("\"owner@example.org\"", "\"owner@example.org\\r\\nBcc: mallory@example.org\"", StringComparison.Ordinal));
        Assert.Contains($"From: {List}\r\n", smuggled, StringComparison.Ordinal);
        Assert.DoesNotContain("Bcc", smuggled, StringComparison.Ordinal);
        Assert.Contains("From: owner@example.org\r\n", Distribute(genuine), StringComparison.Ordinal);

        // Each refusal is one line and exit 2.
        File.WriteAllText(owner.Members, "[]");
        owner.Run(["listkey", "distribute", List, "--list-key", k1, "--out", owner.Dir, .. owner.Signing]).AssertUserError("not a securelist member export");

        // The roster decides who gets keys: one that others could rewrite is refused.
        File.WriteAllText(owner.Members, genuine);
        File.SetUnixFileMode(owner.Roster, (UnixFileMode)0x1B6); // 0666
        owner.Run("listkey", "roster", "check", List, "--roster", owner.Roster, "--members", owner.Members).AssertUserError("chmod 600");
    }

    /// <summary>A double-wrap list with these members (bob with an EC key), the owner's desk, and, with
    /// <paramref name="pin"/>, each member's own certificate file pinned in the roster.</summary>
    private static OwnerDesk NewList(CliHarness cli, bool pin, params string[] names)
    {
        cli.Run("list", "create", List, "--mode", "double", "--owner", "owner@example.org").AssertOk();
        var owner = new OwnerDesk(cli);
        foreach (string name in names)
        {
            People.Make(cli, name, ec: name == "bob");
            cli.Run("member", "add", List, $"{name}@example.org", "--cert", cli.Temp.File(name + ".pem")).AssertOk();
            if (pin)
            {
                owner.Accept(name);
            }
        }

        return owner;
    }

    private static CliResult Import(string member, string message, string keys, params string[] extra) =>
        CliHarness.RunRaw(["listkey", "import", "--cert", TempOf(message, member + ".pem"), "--key", TempOf(message, member + ".key"), "--in", message, "--out", keys, .. extra]);

    /// <summary>The harness's temp directory holds every person's files; messages live below it.</summary>
    private static string TempOf(string below, string file)
    {
        for (string? dir = Path.GetDirectoryName(below); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, file)))
            {
                return Path.Combine(dir, file);
            }
        }

        throw new FileNotFoundException(file);
    }

    private static void AssertRefused(CliResult result, string reason)
    {
        Assert.True(result.ExitCode == ListKeyCommandsExit.Refused, $"expected exit 3, got {result.ExitCode}: {result.Error}{result.Output}");
        result.AssertOneLine("refused: ");
        result.AssertOneLine(reason);
    }

    /// <summary>The SHA-256 (hex) of the certificate the server's expansion picks for ADDRESS: the one the milter uses.</summary>
    private static string ExpandedFingerprint(CliHarness cli, string address)
    {
        var time = TimeProvider.System;
        using var store = Directory.Storage.SqlDirectoryStore.Open(cli.Options, time);
        var directory = new ListDirectory(store, new ListKeyStore(new KeysOptions { Directory = cli.KeysDirectory }), time);
        X509Certificate2 chosen = directory.Expand(List).Members.Single(m => m.Address == address).Certificate!;
        return Convert.ToHexString(chosen.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
    }
}

internal static class ListKeyCommandsExit
{
    public const int Refused = Commands.ListKeyCommands.ExitRefused;
}
