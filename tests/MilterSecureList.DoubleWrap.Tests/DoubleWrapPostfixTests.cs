using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Cms;
using MilterSecureList.Mime;
using MilterSecureList.Testing;
using CmsDoubleWrap = MilterSecureList.Cms.DoubleWrap;

namespace MilterSecureList.DoubleWrap.Tests;

/// <summary>Issue 6 item 5: the double-wrap properties, end to end through a real Postfix 3.7 and securelist-milter,
/// with the members' and the sender's side run by the securelist CLI and openssl (docs/double-wrap.md §3).</summary>
public sealed class DoubleWrapPostfixTests
{
    private static readonly TimeSpan s_deliveryTimeout = TimeSpan.FromSeconds(120);

    private static readonly string[] s_members = ["alice", "bob", "carol"];

    [Fact]
    public async Task DoubleWrapListPropertiesHoldThroughPostfix()
    {
        ExternalTool.RequireRoot("a throwaway Postfix instance");
        string openssl = ExternalTool.Require("openssl", "openssl");
        using var world = new DoubleWrapWorld();
        string list = DoubleWrapWorld.List;

        // --- the list, members (RSA and EC), and dave who will leave -------------------------------------------
        world.CliOk("list", "create", list, "--mode", "double", "--owner", "owner@dw.test");
        foreach (string m in s_members.Append("dave"))
        {
            await world.MakeMemberAsync(m, ec: m == "bob");
            world.CliOk("member", "add", list, DoubleWrapWorld.Address(m), "--cert", world.Cert(m));
        }

        string serverCert = Path.Combine(world.OwnerDir, "server.pem");
        await File.WriteAllTextAsync(serverCert, world.CliOk("list", "export-cert", list).Output);

        // --- epoch 1: made by the owner, distributed as ordinary S/MIME, opened by openssl and imported -------
        string key1 = Path.Combine(world.OwnerDir, "epoch1.key");
        world.CliOk("listkey", "new", list, "--out", key1, "--epoch", "1");
        string dist1 = Path.Combine(world.OwnerDir, "dist1");
        world.CliOk("listkey", "distribute", list, "--list-key", key1, "--out", dist1);
        foreach (string m in s_members.Append("dave"))
        {
            string message = Path.Combine(dist1, DoubleWrapWorld.Address(m) + ".eml");
            Assert.True(File.Exists(message), $"no key message for {m}");
            (int code, string plain, string err) = await ExternalTool.RunAsync(openssl,
                ["cms", "-decrypt", "-recip", world.Cert(m), "-inkey", world.Key(m), "-in", message]);
            Assert.True(code == 0, $"openssl cannot open {m}'s key message: {err}");
            Assert.Contains($"List: {list}", plain, StringComparison.Ordinal);
            world.CliOk("listkey", "import", "--cert", world.Cert(m), "--key", world.Key(m), "--in", message, "--out", world.ListKeys(m));
        }

        byte[] listKey1;
        using (ListKeyFile k = ListKeyFile.Load(key1))
        {
            listKey1 = (byte[])k.Key.Clone();
        }

        // --- dave leaves before the first post (no rotation yet: the owner is told to rotate) ------------------
        CliRun removed = world.CliOk("member", "remove", list, DoubleWrapWorld.Address("dave"));
        Assert.Contains("rotate", removed.Error, StringComparison.Ordinal);

        await using DaemonProcess daemon = await DaemonProcess.StartAsync(
            "[Listener]\nSocket = {SOCKET}\nSocketMode = 0666\n" + world.ConfigBody);
        IEnumerable<string> mainCf = File.ReadAllLines(Path.Combine(DaemonProcess.RepositoryRoot(), "contrib/postfix/main.cf.snippet"))
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Replace("@SOCKET@", daemon.Socket, StringComparison.Ordinal)
                .Replace("@LISTDOMAIN@", DoubleWrapWorld.ListDomain, StringComparison.Ordinal)
                .Replace("relay_domains = $relay_domains, ", "relay_domains = ", StringComparison.Ordinal));
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket, mainCf);

        // --- post 1 (epoch 1), signed then encrypted by alice --------------------------------------------------
        (byte[] sent1, string text1) = Post(world, "first", key1, serverCert);
        Assert.Equal(250, (await postfix.SendAsync(DoubleWrapWorld.Address("alice"), [list], sent1)).Code);
        IReadOnlyList<SinkMessage> got = await postfix.WaitForSinkMessagesAsync(1, s_deliveryTimeout);
        SinkMessage copy1 = Assert.Single(got);

        // Every member decrypts (securelist decrypt with its own key and list-key directory), signature verified.
        Assert.Equal(s_members.Select(m => $"<{DoubleWrapWorld.Address(m)}>").Order(StringComparer.Ordinal), copy1.Recipients.Order(StringComparer.Ordinal));
        string received1 = Path.Combine(world.Root, "received1.eml");
        await File.WriteAllTextAsync(received1, copy1.Headers + "\n" + copy1.Body);
        foreach (string m in s_members)
        {
            string plain = AssertMemberReads(world, m, received1, text1);
            Assert.Contains("first", plain, StringComparison.Ordinal);
        }

        // The removed member got no copy (above: not a recipient) and cannot open a current member's copy with the
        // list key it kept: the outer layer is for the members' certificates, none of which it has.
        CliRun daveTry = DecryptAs(world, "dave", received1);
        Assert.True(daveTry.ExitCode == 2, $"dave: exit {daveTry.ExitCode} {daveTry.Error}");
        Assert.Contains("cannot decrypt", daveTry.Error, StringComparison.Ordinal);

        // The server's private key together with its whole state cannot recover the content.
        (X509Certificate2 sCert, AsymmetricAlgorithm sKey) = world.ServerKey();
        byte[] cms1 = ReadCms(sent1);
        Assert.Throws<CmsRewrapException>(() => CmsDecryptor.Decrypt(cms1, sCert, sKey));
        Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(cms1, sCert, sKey, _ => null));
        byte[] blob1 = ServerView.InnerBlob(cms1, (RSA)sKey);
        Assert.Equal(40, blob1.Length); // RFC 5649 wrap of the 32-byte AES-256-GCM key
        using (var control = Aes.Create())
        {
            // Positive control: the blob the server gets is the real one (the list key opens it), so the search below
            // is not vacuous.
            control.Key = listKey1;
            Assert.Equal(32, control.DecryptKeyWrapPadded(blob1).Length);
            Assert.Throws<InvalidOperationException>(() => ServerView.TryEveryWindow(blob1, [0, .. listKey1, 0], "control"));
        }

        await daemon.StopAsync(); // flushes the log
        long windows = 0;
        // The server's whole state: database, key directory, log, configuration, and the daemon's own directory.
        IEnumerable<string> serverState = world.ServerFiles()
            .Concat(System.IO.Directory.EnumerateFiles(daemon.Directory).Where(f => !f.EndsWith(".sock", StringComparison.Ordinal)));
        int files = 0;
        foreach (string file in serverState)
        {
            files++;
            byte[] data = await File.ReadAllBytesAsync(file);
            windows += ServerView.TryEveryWindow(blob1, data, file);
            foreach (byte[] form in ServerView.Encodings(listKey1))
            {
                Assert.True(data.AsSpan().IndexOf(form) < 0, $"the list key appears in the server's {file}");
            }
        }

        byte[] daemonOutput = Encoding.UTF8.GetBytes(daemon.Output);
        windows += ServerView.TryEveryWindow(blob1, daemonOutput, "daemon output");
        Assert.All(ServerView.Encodings(listKey1), form => Assert.True(daemonOutput.AsSpan().IndexOf(form) < 0, "the list key appears in the daemon output"));
        Assert.True(windows > 10_000 && files >= 4, $"only {windows} candidate keys in {files} files tried: is the server state there?");
        Assert.True(File.Exists(world.DatabasePath) && File.Exists(world.LogPath), "the database and the daemon log must be among the searched files");

        // The documented price of not rotating: the server colluding with dave (old key) reads epoch-1 posts.
        using var serverListKey = new ListKey(sCert, sKey);
        using X509Certificate2 daveCert = X509Certificate2.CreateFromPem(File.ReadAllText(world.Cert("dave")));
        using AsymmetricAlgorithm daveKey = LoadKey(world, "dave", daveCert);
        RewrapResult forDave1 = CmsDoubleWrap.Rewrap(cms1, [serverListKey], [CmsRecipient.FromCertificate(daveCert)]);
        byte[] colluded = CmsDoubleWrap.Decrypt(forDave1.ContentInfo, daveCert, daveKey, _ => listKey1);
        Assert.Contains("first", Encoding.UTF8.GetString(SmimeEntities.CheckSignature(colluded).Content), StringComparison.Ordinal);

        // --- rotation: epoch 2 goes to the remaining members only ----------------------------------------------
        string key2 = Path.Combine(world.OwnerDir, "epoch2.key");
        Assert.Contains("epoch 2", world.CliOk("listkey", "new", list, "--out", key2, "--previous", key1).Output, StringComparison.Ordinal);
        string dist2 = Path.Combine(world.OwnerDir, "dist2");
        world.CliOk("listkey", "distribute", list, "--list-key", key2, "--out", dist2);
        Assert.Equal(s_members.Select(m => DoubleWrapWorld.Address(m) + ".eml").Order(StringComparer.Ordinal),
            System.IO.Directory.GetFiles(dist2).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (string m in s_members)
        {
            world.CliOk("listkey", "import", "--cert", world.Cert(m), "--key", world.Key(m),
                "--in", Path.Combine(dist2, DoubleWrapWorld.Address(m) + ".eml"), "--out", world.ListKeys(m));
        }

        await using DaemonProcess daemon2 = await DaemonProcess.StartAsync(
            "[Listener]\nSocket = " + daemon.Socket + "\nSocketMode = 0666\n" + world.ConfigBody);
        (byte[] sent2, string text2) = Post(world, "second", key2, serverCert);
        Assert.Equal(250, (await postfix.SendAsync(DoubleWrapWorld.Address("alice"), [list], sent2)).Code);
        got = await postfix.WaitForSinkMessagesAsync(2, s_deliveryTimeout);
        SinkMessage copy2 = Assert.Single(got, g => g.File != copy1.File);
        string received2 = Path.Combine(world.Root, "received2.eml");
        await File.WriteAllTextAsync(received2, copy2.Headers + "\n" + copy2.Body);
        foreach (string m in s_members)
        {
            AssertMemberReads(world, m, received2, text2);
        }

        // After the rotation the old list key plus the server's key cannot open the new post.
        byte[] cms2 = ReadCms(sent2);
        RewrapResult forDave2 = CmsDoubleWrap.Rewrap(cms2, [serverListKey], [CmsRecipient.FromCertificate(daveCert)]);
        CmsRewrapException stale = Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(forDave2.ContentInfo, daveCert, daveKey, _ => listKey1));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, stale.Reason);
        Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(forDave2.ContentInfo, daveCert, daveKey,
            id => id.Epoch == 1 ? listKey1 : null));

        // --- tampering with the content is detected (AES-256-GCM tag) -----------------------------------------
        byte[] delivered2 = ReadCms(Encoding.UTF8.GetBytes(copy2.Headers + "\n" + copy2.Body));
        byte[] tampered = (byte[])delivered2.Clone();
        tampered[^40] ^= 0x01; // inside the encrypted content, before the 16-byte tag
        string tamperedFile = Path.Combine(world.Root, "tampered.eml");
        await File.WriteAllBytesAsync(tamperedFile, SmimeEntities.WriteEncrypted("Subject: tampered\r\n", tampered, authEnveloped: true));
        File.Delete(Path.Combine(world.Root, "carol.out"));
        CliRun tamperRun = DecryptAs(world, "carol", tamperedFile);
        Assert.True(tamperRun.ExitCode == 1, $"tampered copy: exit {tamperRun.ExitCode} {tamperRun.Error}{tamperRun.Output}");
        Assert.Contains("cannot decrypt", tamperRun.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(world.Root, "carol.out")), "a tampered post must not produce any output");

        Assert.Equal(0, await daemon2.StopAsync());
        Assert.DoesNotContain("warning: milter", postfix.ReadMailLog(), StringComparison.Ordinal);
    }

    /// <summary>Alice's post: a text entity, signed with her key and double-wrapped by securelist encrypt.</summary>
    private static (byte[] Message, string Text) Post(DoubleWrapWorld world, string tag, string listKey, string serverCert)
    {
        string text = $"The {tag} secret post: meeting moved to Thursday. {Guid.NewGuid():N}";
        string input = Path.Combine(world.MemberDir("alice"), tag + ".txt");
        File.WriteAllText(input, $"From: {DoubleWrapWorld.Address("alice")}\r\nTo: {DoubleWrapWorld.List}\r\nSubject: {tag}\r\n"
            + $"Message-Id: <{Guid.NewGuid():N}@dw.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n");
        string output = Path.Combine(world.MemberDir("alice"), tag + ".eml");
        world.CliOk("encrypt", "--to", DoubleWrapWorld.List, "--list-key", listKey, "--server-cert", serverCert, "--in", input, "--out", output,
            "--sign-cert", world.Cert("alice"), "--sign-key", world.Key("alice"));
        return (File.ReadAllBytes(output), text);
    }

    private static CliRun DecryptAs(DoubleWrapWorld world, string member, string file) =>
        world.Cli("decrypt", "--cert", world.Cert(member), "--key", world.Key(member), "--list-keys", world.ListKeys(member),
            "--in", file, "--out", Path.Combine(world.Root, member + ".out"));

    private static string AssertMemberReads(DoubleWrapWorld world, string member, string file, string text)
    {
        CliRun run = DecryptAs(world, member, file);
        Assert.True(run.ExitCode == 0, $"{member} cannot decrypt: exit {run.ExitCode} {run.Error}");
        Assert.Contains("signature: verified", run.Output, StringComparison.Ordinal);
        string plain = File.ReadAllText(Path.Combine(world.Root, member + ".out"));
        Assert.Equal($"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n", plain);
        return plain;
    }

    private static byte[] ReadCms(byte[] message)
    {
        using var stream = new MemoryStream(message);
        return SmimeEntities.ReadEncryptedCms(stream);
    }

    private static AsymmetricAlgorithm LoadKey(DoubleWrapWorld world, string member, X509Certificate2 cert) =>
        Directory.ListKeyStore.LoadPrivateKey(world.Key(member), cert, () => null);
}
