using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Tests.Fixtures;
using CmsDoubleWrap = MilterSecureList.Cms.DoubleWrap;

namespace MilterSecureList.Admin.Tests;

/// <summary>securelist listkey new|distribute|rotate|import, encrypt, decrypt and member remove on double-wrap lists, with openssl
/// as the independent S/MIME peer. SQLite only: the verbs use the directory through the same API on both back ends.</summary>
[Collection(BackendCollection.Name)]
public sealed class DoubleWrapCommandTests(BackendFixture fixture)
{
    private const string List = "crypto@lists.example.org";

    [Fact]
    public void ListKeyNewWritesA0600FileWithEpochFromOptionPreviousOrTime()
    {
        using CliHarness cli = new(fixture, "sqlite");
        string k1 = cli.Temp.File("k1.key");
        Assert.Contains("epoch 7", cli.Run("listkey", "new", List, "--out", k1, "--epoch", "7").AssertOk().Output, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(k1));
        using (ListKeyFile key = ListKeyFile.Load(k1))
        {
            Assert.Equal(List, key.List);
            Assert.Equal(7, key.Epoch);
            Assert.Equal(32, key.Key.Length);
            Assert.Contains(Convert.ToBase64String(key.Key), File.ReadAllText(k1), StringComparison.Ordinal);
        }

        string k2 = cli.Temp.File("k2.key");
        cli.Run("listkey", "new", List, "--out", k2, "--previous", k1).AssertOk();
        using (ListKeyFile key1 = ListKeyFile.Load(k1))
        using (ListKeyFile key2 = ListKeyFile.Load(k2))
        {
            Assert.Equal(8, key2.Epoch);
            Assert.NotEqual(key1.Key, key2.Key);
        }

        // No option: seconds since 1970 from the clock.
        string k3 = cli.Temp.File("k3.key");
        using var output = new StringWriter();
        using var error = new StringWriter();
        var time = new ManualTimeProvider(new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero));
        Assert.Equal(0, AdminCli.Run(["listkey", "new", List, "--out", k3], output, error, time));
        using (ListKeyFile key3 = ListKeyFile.Load(k3))
        {
            Assert.Equal(time.GetUtcNow().ToUnixTimeSeconds(), key3.Epoch);
        }

        cli.Run("listkey", "new", List, "--out", k1, "--epoch", "9").AssertUserError("never overwritten");
        cli.Run("listkey", "new", List, "--out", cli.Temp.File("x.key"), "--epoch", "9", "--previous", k1).AssertUserError("exclude each other");
        cli.Run("listkey", "new", "other@lists.example.org", "--out", cli.Temp.File("y.key"), "--previous", k1).AssertUserError("is the key of");

        File.SetUnixFileMode(k1, (UnixFileMode)0x1A4); // 0644
        cli.Run("listkey", "new", List, "--out", cli.Temp.File("z.key"), "--previous", k1).AssertUserError("chmod 600");
        File.WriteAllText(cli.Temp.File("bad.key"), "List: a@b\nEpoch: 1\nKey: AAAA\n");
        File.SetUnixFileMode(cli.Temp.File("bad.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        cli.Run("listkey", "new", List, "--out", cli.Temp.File("w.key"), "--previous", cli.Temp.File("bad.key")).AssertUserError("not 32 bytes");
    }

    [Fact]
    public void DistributeWritesOneSignedOpensslReadableMessagePerPinnedMemberAndImportStoresTheKey()
    {
        using CliHarness cli = new(fixture, "sqlite");
        cli.Run("list", "create", List, "--mode", "double", "--owner", "owner@example.org").AssertOk();
        var owner = new OwnerDesk(cli);
        var members = new[] { ("alice", false), ("bob", true) };
        foreach ((string name, bool ec) in members)
        {
            MakeMember(cli, name, ec);
            cli.Run("member", "add", List, $"{name}@example.org", "--cert", cli.Temp.File(name + ".pem")).AssertOk();
            owner.Accept(name);
        }

        owner.Export();
        string k1 = cli.Temp.File("k1.key");
        owner.Run("listkey", "new", List, "--out", k1, "--epoch", "1").AssertOk();
        string outDir = cli.Temp.File("dist");
        Assert.Contains("2 message(s)", owner.Run(["listkey", "distribute", List, "--list-key", k1, "--out", outDir, .. owner.Signing]).AssertOk().Output, StringComparison.Ordinal);
        Assert.Equal(["alice@example.org.eml", "bob@example.org.eml"], System.IO.Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        using ListKeyFile original = ListKeyFile.Load(k1);
        string ownerFingerprint = People.Fingerprint(owner.Cert);
        foreach ((string name, _) in members)
        {
            string message = Path.Combine(outDir, $"{name}@example.org.eml");
            string text = File.ReadAllText(message);
            Assert.Contains($"To: {name}@example.org", text, StringComparison.Ordinal);
            Assert.Contains("From: owner@example.org", text, StringComparison.Ordinal);
            Assert.Contains("Subject: List key for crypto@lists.example.org, epoch 1", text, StringComparison.Ordinal);
            Assert.Contains("application/pkcs7-mime; smime-type=enveloped-data", text, StringComparison.Ordinal);
            Assert.DoesNotContain(Convert.ToBase64String(original.Key), text, StringComparison.Ordinal);

            // openssl alone opens it and checks the owner's signature over the key file.
            string signedEntity = cli.Temp.File(name + "-signed.eml");
            string plain = Openssl("cms", "-decrypt", "-recip", cli.Temp.File(name + ".pem"), "-inkey", cli.Temp.File(name + ".key"), "-in", message, "-out", signedEntity);
            Assert.Contains("multipart/signed", File.ReadAllText(signedEntity), StringComparison.Ordinal);
            Assert.Contains("Key: " + Convert.ToBase64String(original.Key), File.ReadAllText(signedEntity), StringComparison.Ordinal);
            (int verified, string verifiedText, string verifyError) = OpensslTool.TryRun("cms", "-verify", "-noverify", "-in", signedEntity,
                "-certfile", owner.Cert);
            Assert.True(verified == 0, "openssl cms -verify: " + verifyError + plain);
            Assert.Contains("Epoch: 1", verifiedText, StringComparison.Ordinal);

            // The first import pins the owner's certificate and says so with its fingerprint.
            string keys = cli.Temp.File(name + "-keys");
            CliResult imported = cli.Run("listkey", "import", "--cert", cli.Temp.File(name + ".pem"), "--key", cli.Temp.File(name + ".key"),
                "--in", message, "--out", keys).AssertOk();
            Assert.Contains("epoch 1", imported.Output, StringComparison.Ordinal);
            Assert.Contains("pinned the owner certificate", imported.Output, StringComparison.Ordinal);
            Assert.Contains(ownerFingerprint, imported.Output, StringComparison.Ordinal);
            string stored = Path.Combine(keys, "crypto@lists.example.org.1.key");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(stored));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(keys));
            using ListKeyFile importedKey = ListKeyFile.Load(stored);
            Assert.Equal(original.Key, importedKey.Key);
            // Importing the same message again is harmless.
            Assert.Contains("already", cli.Run("listkey", "import", "--cert", cli.Temp.File(name + ".pem"), "--key", cli.Temp.File(name + ".key"),
                "--in", message, "--out", keys).AssertOk().Output, StringComparison.Ordinal);
        }

        // Bob cannot import Alice's message.
        CliResult wrong = cli.Run("listkey", "import", "--cert", cli.Temp.File("bob.pem"), "--key", cli.Temp.File("bob.key"),
            "--in", Path.Combine(outDir, "alice@example.org.eml"), "--out", cli.Temp.File("stolen"));
        Assert.Equal(2, wrong.ExitCode);
        wrong.AssertOneLine("cannot decrypt the key message");
        Assert.False(System.IO.Directory.Exists(cli.Temp.File("stolen")) && System.IO.Directory.GetFiles(cli.Temp.File("stolen")).Length > 0);

        // The server's state never holds the list key.
        AssertServerHoldsNoKey(cli, original.Key);
    }

    /// <summary>Neither the server's key directory nor its database file holds the key, raw or in base64.</summary>
    internal static void AssertServerHoldsNoKey(CliHarness cli, byte[] key)
    {
        IEnumerable<string> keyFiles = System.IO.Directory.Exists(cli.KeysDirectory) ? System.IO.Directory.EnumerateFiles(cli.KeysDirectory) : [];
        foreach (string file in keyFiles.Append(cli.Options.Path!))
        {
            byte[] data = File.ReadAllBytes(file);
            Assert.True(data.AsSpan().IndexOf(key) < 0, file);
            Assert.True(data.AsSpan().IndexOf(Encoding.ASCII.GetBytes(Convert.ToBase64String(key))) < 0, file);
        }
    }

    [Fact]
    public void EncryptRewrapDecryptRoundTripSignedAndUnsigned()
    {
        using CliHarness cli = new(fixture, "sqlite");
        cli.Run("list", "create", List, "--mode", "double").AssertOk();
        MakeMember(cli, "alice", ec: false);
        MakeMember(cli, "bob", ec: true);
        string server = cli.Temp.File("server.pem");
        File.WriteAllText(server, cli.Run("list", "export-cert", List).AssertOk().Output);
        string k1 = cli.Temp.File("k1.key");
        cli.Run("listkey", "new", List, "--out", k1, "--epoch", "3").AssertOk();
        string keys = cli.Temp.File("bobkeys");
        System.IO.Directory.CreateDirectory(keys);
        File.Copy(k1, Path.Combine(keys, "owner-copy.key"));
        File.SetUnixFileMode(Path.Combine(keys, "owner-copy.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);

        string msg = cli.Temp.File("msg.eml");
        File.WriteAllText(msg, "From: alice@example.org\nTo: crypto@lists.example.org\nSubject: plans\n\nhello list\n");
        foreach (bool signed in new[] { true, false })
        {
            string post = cli.Temp.File($"post-{signed}.eml");
            string[] sign = signed ? ["--sign-cert", cli.Temp.File("alice.pem"), "--sign-key", cli.Temp.File("alice.key")] : [];
            cli.Run(["encrypt", "--to", List, "--list-key", k1, "--server-cert", server, "--in", msg, "--out", post, .. sign]).AssertOk();
            string postText = File.ReadAllText(post);
            Assert.StartsWith("From: alice@example.org\r\nTo: crypto@lists.example.org\r\nSubject: plans\r\nMIME-Version: 1.0\r\n", postText, StringComparison.Ordinal);
            Assert.Contains("smime-type=authEnveloped-data", postText, StringComparison.Ordinal);
            Assert.DoesNotContain("hello list", postText, StringComparison.Ordinal);

            // The server's step, as the filter does it, then Bob (EC, kari) decrypts.
            string received = cli.Temp.File($"received-{signed}.eml");
            File.WriteAllBytes(received, ServerRewrap(cli, postText, "bob"));
            string plainFile = cli.Temp.File($"plain-{signed}.eml");
            CliResult opened = cli.Run("decrypt", "--cert", cli.Temp.File("bob.pem"), "--key", cli.Temp.File("bob.key"), "--list-keys", keys,
                "--in", received, "--out", plainFile).AssertOk();
            Assert.Contains(signed ? "signature: verified: signed by CN=alice" : "signature: no signature", opened.Output, StringComparison.Ordinal);
            Assert.Equal("Content-Type: text/plain; charset=utf-8\r\n\r\nhello list\r\n", File.ReadAllText(plainFile));

            // Without the list key: a clear one-line failure, no output.
            CliResult noKey = cli.Run("decrypt", "--cert", cli.Temp.File("bob.pem"), "--key", cli.Temp.File("bob.key"),
                "--in", received, "--out", cli.Temp.File("nokey.eml"));
            Assert.Equal(1, noKey.ExitCode);
            noKey.AssertOneLine("no list key for crypto@lists.example.org epoch 3");
            Assert.False(File.Exists(cli.Temp.File("nokey.eml")));
        }

        // A bare text file (no header block) becomes a text/plain entity.
        string bare = cli.Temp.File("bare.txt");
        File.WriteAllText(bare, "just text: no headers here\n");
        string barePost = cli.Temp.File("bare.eml");
        cli.Run("encrypt", "--to", List, "--list-key", k1, "--server-cert", server, "--in", bare, "--out", barePost).AssertOk();
        string bareReceived = cli.Temp.File("bare-received.eml");
        File.WriteAllBytes(bareReceived, ServerRewrap(cli, File.ReadAllText(barePost), "alice"));
        File.Copy(k1, cli.Temp.File("alicekeys.key"));
        File.SetUnixFileMode(cli.Temp.File("alicekeys.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        cli.Run("decrypt", "--cert", cli.Temp.File("alice.pem"), "--key", cli.Temp.File("alice.key"), "--list-keys", cli.Temp.Path,
            "--in", bareReceived, "--out", cli.Temp.File("bare-plain.eml")).AssertOk();
        Assert.Equal("Content-Type: text/plain; charset=utf-8\r\n\r\njust text: no headers here\r\n", File.ReadAllText(cli.Temp.File("bare-plain.eml")));

        cli.Run("encrypt", "--to", "other@lists.example.org", "--list-key", k1, "--server-cert", server, "--in", msg, "--out", cli.Temp.File("x.eml"))
            .AssertUserError("is the key of");
        cli.Run("encrypt", "--to", List, "--list-key", k1, "--server-cert", server, "--in", msg, "--out", cli.Temp.File("x.eml"),
            "--sign-cert", cli.Temp.File("alice.pem")).AssertUserError("go together");
        cli.Run("decrypt", "--cert", cli.Temp.File("bob.pem"), "--key", cli.Temp.File("bob.key"), "--in", msg, "--out", cli.Temp.File("x.eml"))
            .AssertUserError("not encrypted S/MIME");
    }

    [Fact]
    public void DecryptOpensOrdinaryOpensslSmimeAndReportsSignatureStatus()
    {
        using CliHarness cli = new(fixture, "sqlite");
        MakeMember(cli, "alice", ec: false);
        MakeMember(cli, "bob", ec: false);
        string entity = cli.Temp.File("entity.txt");
        File.WriteAllText(entity, "Content-Type: text/plain\r\n\r\nordinary S/MIME from openssl\r\n");
        string signedFile = cli.Temp.File("signed.eml");
        Openssl("cms", "-sign", "-md", "sha256", "-signer", cli.Temp.File("alice.pem"), "-inkey", cli.Temp.File("alice.key"), "-in", entity, "-out", signedFile);

        // multipart/signed (openssl's default), verified.
        string enc = cli.Temp.File("enc.eml");
        Openssl("cms", "-encrypt", "-aes256", "-in", signedFile, "-out", enc, cli.Temp.File("bob.pem"));
        CliResult ok = cli.Run("decrypt", "--cert", cli.Temp.File("bob.pem"), "--key", cli.Temp.File("bob.key"), "--in", enc, "--out", cli.Temp.File("p1.eml")).AssertOk();
        Assert.Contains("signature: verified: signed by CN=alice", ok.Output, StringComparison.Ordinal);
        Assert.Contains("ordinary S/MIME from openssl", File.ReadAllText(cli.Temp.File("p1.eml")), StringComparison.Ordinal);

        // Unsigned.
        string plainEnc = cli.Temp.File("plainenc.eml");
        Openssl("cms", "-encrypt", "-aes256", "-in", entity, "-out", plainEnc, cli.Temp.File("bob.pem"));
        Assert.Contains("signature: no signature",
            cli.Run("decrypt", "--cert", cli.Temp.File("bob.pem"), "--key", cli.Temp.File("bob.key"), "--in", plainEnc, "--out", cli.Temp.File("p2.eml")).AssertOk().Output,
            StringComparison.Ordinal);

        // Signed content altered after signing (then encrypted): invalid, exit 3.
        string altered = cli.Temp.File("altered.eml");
        File.WriteAllText(altered, File.ReadAllText(signedFile).Replace("ordinary S/MIME", "forged S/MIME!!", StringComparison.Ordinal));
        string alteredEnc = cli.Temp.File("alteredenc.eml");
        Openssl("cms", "-encrypt", "-aes256", "-in", altered, "-out", alteredEnc, cli.Temp.File("bob.pem"));
        CliResult bad = cli.Run("decrypt", "--cert", cli.Temp.File("bob.pem"), "--key", cli.Temp.File("bob.key"), "--in", alteredEnc, "--out", cli.Temp.File("p3.eml"));
        Assert.Equal(EncryptCommandsExit.BadSignature, bad.ExitCode);
        Assert.Contains("INVALID signature", bad.Output, StringComparison.Ordinal);

        // Not addressed to Alice.
        CliResult notMine = cli.Run("decrypt", "--cert", cli.Temp.File("alice.pem"), "--key", cli.Temp.File("alice.key"), "--in", enc, "--out", cli.Temp.File("p4.eml"));
        Assert.Equal(2, notMine.ExitCode);
        notMine.AssertOneLine("cannot decrypt");
    }

    [Fact]
    public void RotationRunsOnTheOwnersMachineForThePinnedRemainingMembersOnly()
    {
        using CliHarness cli = new(fixture, "sqlite");
        cli.Run("list", "create", List, "--mode", "double", "--owner", "owner@example.org").AssertOk();
        var owner = new OwnerDesk(cli);
        foreach (string name in new[] { "alice", "bob", "dave" })
        {
            MakeMember(cli, name, ec: false);
            cli.Run("member", "add", List, $"{name}@example.org", "--cert", cli.Temp.File(name + ".pem")).AssertOk();
            owner.Accept(name);
        }

        string k1 = Path.Combine(owner.Dir, "current.key");
        owner.Run("listkey", "new", List, "--out", k1, "--epoch", "4").AssertOk();

        // The server cannot rotate: the old way is refused with the new one, and nothing is removed.
        cli.Run("list", "set", List, "--option", "rotate-on-remove=yes").AssertOk();
        cli.Run("member", "remove", List, "dave@example.org", "--list-key", k1).AssertUserError("listkey rotate");
        Assert.Contains("dave@example.org", cli.Run("member", "ls", List, "--plain").AssertOk().Output, StringComparison.Ordinal);

        // The server removes; it tells the operator what the owner has to do.
        CliResult removed = cli.Run("member", "remove", List, "dave@example.org").AssertOk();
        Assert.Contains("rotation required", removed.Error, StringComparison.Ordinal);
        Assert.Contains("listkey rotate", removed.Error, StringComparison.Ordinal);
        owner.Export();

        // The owner rotates without the directory (owner.Run has no usable --config).
        CliResult rotated = owner.Run(["listkey", "rotate", List, "--list-key", k1, "--remove", "dave@example.org", .. owner.Signing]).AssertOk();
        Assert.Contains("rotated crypto@lists.example.org to epoch 5", rotated.Output, StringComparison.Ordinal);
        string k2 = Path.Combine(owner.Dir, "crypto@lists.example.org.5.key");
        using ListKeyFile next = ListKeyFile.Load(k2);
        using ListKeyFile previous = ListKeyFile.Load(k1);
        Assert.Equal(5, next.Epoch);
        Assert.NotEqual(previous.Key, next.Key);
        string messages = Path.Combine(owner.Dir, "crypto@lists.example.org.5.messages");
        Assert.Equal(["alice@example.org.eml", "bob@example.org.eml"], System.IO.Directory.GetFiles(messages).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Contains("Key: " + Convert.ToBase64String(next.Key),
            Openssl("cms", "-decrypt", "-recip", cli.Temp.File("bob.pem"), "-inkey", cli.Temp.File("bob.key"), "-in", Path.Combine(messages, "bob@example.org.eml")),
            StringComparison.Ordinal);

        // Dave is no longer pinned: were the server to add him back, he would be refused.
        CliResult check = owner.Run("listkey", "roster", "check", List, "--roster", owner.Roster).AssertOk();
        Assert.DoesNotContain("dave", check.Output, StringComparison.Ordinal);
        AssertServerHoldsNoKey(cli, next.Key);
        AssertServerHoldsNoKey(cli, previous.Key);
    }

    /// <summary>The filter's step for a double-wrap list: the server's key from the key directory, one member.</summary>
    internal static byte[] ServerRewrap(CliHarness cli, string postText, string member)
    {
        using X509Certificate2 serverCert = X509Certificate2.CreateFromPem(cli.Run("list", "export-cert", List).AssertOk().Output);
        string keyFile = Assert.Single(System.IO.Directory.GetFiles(cli.KeysDirectory, "*.key.pem"));
        using var serverKey = new ListKey(serverCert, ListKeyStore.LoadPrivateKey(keyFile, serverCert, () => null));
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(postText));
        byte[] cms = SmimeEntities.ReadEncryptedCms(stream);
        using X509Certificate2 memberCert = X509Certificate2.CreateFromPem(File.ReadAllText(cli.Temp.File(member + ".pem")));
        RewrapResult result = CmsDoubleWrap.Rewrap(cms, [serverKey], [Cms.CmsRecipient.FromCertificate(memberCert)]);
        return SmimeEntities.WriteEncrypted([new MimeKit.Header("To", $"{member}@example.org")], result.ContentInfo, result.IsAuthEnveloped);
    }

    private static void MakeMember(CliHarness cli, string name, bool ec) => People.Make(cli, name, ec);

    private static string Openssl(params string[] args) => OpensslTool.Run(args);
}

internal static class EncryptCommandsExit
{
    public const int BadSignature = Commands.EncryptCommands.ExitBadSignature;
}
