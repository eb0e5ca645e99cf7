using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Admin.Tests;

/// <summary>
/// <c>securelist smime rewrap</c> and <c>securelist check</c> on messages that
/// openssl encrypted; openssl decrypts what they write. Exit codes and one-line refusals are part of the contract.
/// </summary>
[Collection(BackendCollection.Name)]
public sealed class SmimeAndCheckCliTests(BackendFixture fixture)
{
    private const string Entity = "Content-Type: text/plain\r\n\r\nquarterly figures\r\n";

    [Fact]
    public void SmimeRewrapReKeysForTheMembersAndRefusesWhatItCannotDo()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        string dir = cli.Temp.Path;
        (string listCert, string listKey) = Pair(dir, "list@example.org");
        (string aliceCert, string aliceKey) = Pair(dir, "alice@example.org");
        (string bobCert, string bobKey) = Pair(dir, "bob@example.org");
        (string eveCert, string eveKey) = Pair(dir, "eve@example.org");
        string post = Encrypt(dir, listCert, "post.eml");

        string output = Path.Combine(dir, "out.eml");
        CliResult ok = CliHarness.RunRaw("smime", "rewrap", "--list-cert", listCert, "--list-key", listKey,
            "--member", aliceCert, "--member", bobCert, "--in", post, "--out", output).AssertOk();
        Assert.Contains("re-keyed for 2 member(s)", ok.Output, StringComparison.Ordinal);
        Assert.Equal(Entity, Decrypt(output, aliceCert, aliceKey));
        Assert.Equal(Entity, Decrypt(output, bobCert, bobKey));
        Assert.Null(TryDecrypt(output, eveCert, eveKey));
        Assert.Null(TryDecrypt(output, listCert, listKey)); // the list's own RecipientInfo is gone
        Assert.Contains("Subject: figures", File.ReadAllText(output), StringComparison.Ordinal); // headers untouched

        // With --oaep the RSA members get RSAES-OAEP; openssl still reads it.
        CliHarness.RunRaw("smime", "rewrap", "--list-cert", listCert, "--list-key", listKey, "--member", aliceCert, "--oaep",
            "--in", post, "--out", output).AssertOk();
        Assert.Contains("rsaesOaep", Openssl("cms", "-cmsout", "-print", "-in", output), StringComparison.Ordinal);
        Assert.Equal(Entity, Decrypt(output, aliceCert, aliceKey));

        string plain = Path.Combine(dir, "plain.eml");
        File.WriteAllText(plain, "Subject: hi\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
        CliResult notSmime = CliHarness.RunRaw("smime", "rewrap", "--list-cert", listCert, "--list-key", listKey, "--member", aliceCert, "--in", plain, "--out", output);
        Assert.Equal(2, notSmime.ExitCode);
        notSmime.AssertOneLine("not S/MIME");

        string other = Encrypt(dir, eveCert, "other.eml");
        CliResult notForList = CliHarness.RunRaw("smime", "rewrap", "--list-cert", listCert, "--list-key", listKey, "--member", aliceCert, "--in", other, "--out", output);
        Assert.Equal(2, notForList.ExitCode);
        Assert.DoesNotContain("   at ", notForList.Error, StringComparison.Ordinal);

        File.SetUnixFileMode(listKey, (UnixFileMode)0x1A4); // 0644: others can read the list key
        CliResult unsafeKey = CliHarness.RunRaw("smime", "rewrap", "--list-cert", listCert, "--list-key", listKey, "--member", aliceCert, "--in", post, "--out", output);
        Assert.NotEqual(0, unsafeKey.ExitCode);
        Assert.DoesNotContain("   at ", unsafeKey.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckPrintsTheVerdictAndEveryModificationAndWritesWhatMembersGet()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        string dir = cli.Temp.Path;
        cli.Run("list", "create", "team@lists.example.org", "--owner", "owner@example.org").AssertOk();
        (string aliceCert, string aliceKey) = Pair(dir, "alice@example.org");
        cli.Run("member", "add", "team@lists.example.org", "alice@example.org", "--cert", aliceCert).AssertOk();
        string listCert = Path.Combine(dir, "team.pem");
        File.WriteAllText(listCert, cli.Run("list", "export-cert", "team@lists.example.org").AssertOk().Output);
        string post = Encrypt(dir, listCert, "post.eml");
        string output = Path.Combine(dir, "delivered.eml");

        CliResult ok = cli.Run("check", "--from", "dave@example.com", "--rcpt", "Team+News@lists.example.org", "--in", post, "--out", output);
        Assert.Equal(0, ok.ExitCode);
        string[] lines = ok.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("250 2.0.0 continue", lines[0]);
        Assert.Contains("DELRCPT <Team+News@lists.example.org>", lines);
        Assert.Contains("ADDRCPT <alice@example.org>", lines);
        Assert.Contains(lines, l => l.StartsWith("ADDHEADER List-Id: <team.lists.example.org>", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("REPLBODY ", StringComparison.Ordinal));
        Assert.Equal(Entity, Decrypt(output, aliceCert, aliceKey));
        Assert.Contains("List-Post: <mailto:team@lists.example.org>", File.ReadAllText(output), StringComparison.Ordinal);

        string plain = Path.Combine(dir, "plain.eml");
        File.WriteAllText(plain, "Subject: hi\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
        CliResult rejected = cli.Run("check", "--from", "dave@example.com", "--rcpt", "team@lists.example.org", "--in", plain);
        Assert.Equal(65, rejected.ExitCode);
        Assert.StartsWith("550 5.7.1 <team@lists.example.org> accepts only S/MIME mail encrypted to the list certificate", rejected.Output, StringComparison.Ordinal);

        CliResult notAList = cli.Run("check", "--from", "dave@example.com", "--rcpt", "bob@example.org", "--in", plain);
        Assert.Equal(0, notAList.ExitCode);
        Assert.Contains("RCPT <bob@example.org>: not a list", notAList.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckSaysWhyItTempfailsAndShowsTheDaemonsLogLinesWithVerbose()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        string dir = cli.Temp.Path;
        cli.Run("list", "create", "team@lists.example.org").AssertOk();
        (string aliceCert, _) = Pair(dir, "alice@example.org");
        cli.Run("member", "add", "team@lists.example.org", "alice@example.org", "--cert", aliceCert).AssertOk();
        string listCert = Path.Combine(dir, "team.pem");
        File.WriteAllText(listCert, cli.Run("list", "export-cert", "team@lists.example.org").AssertOk().Output);
        string post = Encrypt(dir, listCert, "post.eml");
        string keyFile = Assert.Single(System.IO.Directory.GetFiles(cli.KeysDirectory));
        File.Move(keyFile, keyFile + ".away");

        CliResult tempfail = cli.Run("check", "--from", "dave@example.com", "--rcpt", "team@lists.example.org", "--in", post);
        Assert.Equal(75, tempfail.ExitCode);
        string[] lines = tempfail.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("451 4.3.0 ", lines[0], StringComparison.Ordinal);
        Assert.Contains($"cause: offline: conn=- local failure, tempfail: DirectoryException: private key file {keyFile} is missing", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("log: ", StringComparison.Ordinal));

        CliResult verbose = cli.Run("check", "-v", "--from", "dave@example.com", "--rcpt", "team@lists.example.org", "--in", post);
        Assert.Equal(75, verbose.ExitCode);
        Assert.Contains(verbose.Output.Split('\n'), l => l.StartsWith("log: error: ", StringComparison.Ordinal) && l.Contains(keyFile, StringComparison.Ordinal));
    }

    [Fact]
    public void CheckAnswersBadInputWithOneLineAndTheDocumentedCodeAndOversizeLikeTheDaemon()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        string dir = cli.Temp.Path;
        cli.Run("list", "create", "team@lists.example.org", "--key-type", "p256").AssertOk();
        string check(string name) => Path.Combine(dir, name);

        // A line that is not a field ends nothing: the filter decides on the fields it has (a plaintext post here).
        File.WriteAllText(check("nocolon.eml"), "Subject: hi\r\nthis line has no colon\r\n\r\nbody\r\n");
        CliResult nocolon = cli.Run("check", "--from", "a@example.com", "--rcpt", "team@lists.example.org", "--in", check("nocolon.eml"));
        Assert.Equal(65, nocolon.ExitCode);
        Assert.StartsWith("550 5.7.1 ", nocolon.Output, StringComparison.Ordinal);
        Assert.Equal(string.Empty, nocolon.Error);
        File.WriteAllText(check("bighead.eml"), "X-Big: " + new string('a', 1_100_000) + "\r\n\r\nbody\r\n");
        CliResult bighead = cli.Run("check", "--from", "a@example.com", "--rcpt", "team@lists.example.org", "--in", check("bighead.eml"));
        // Over the daemon's [Milter] MaxHeaderBytes (default 1M): its reply, list mail or not.
        Assert.Equal(65, bighead.ExitCode);
        Assert.StartsWith("552 5.3.4 Message header size exceeds limit\n", bighead.Output, StringComparison.Ordinal);
        Assert.Contains("verdict: reject (the header block is larger than 1048576 bytes: [Milter] MaxHeaderBytes = 1048576)", bighead.Output, StringComparison.Ordinal);
        Assert.Equal(string.Empty, bighead.Error);
        File.WriteAllText(check("plain.eml"), "Subject: hi\r\n\r\nbody\r\n");
        cli.Run("check", "--from", "a@example.com", "--rcpt", "team@lists.example.org\nRCPT <forged@example.org>: list", "--in", check("plain.eml"))
            .AssertUserError("--rcpt 'team@lists.example.org\\nRCPT <forged@example.org>: list' is not an envelope address");

        // [Milter] MaxMessageSize applies offline too: the daemon answers 552 5.3.4 before the filter runs.
        File.AppendAllText(cli.ConfigFile, "\n[Milter]\nMaxMessageSize = 2K\n");
        File.WriteAllText(check("big.eml"), "Subject: hi\r\n\r\n" + new string('a', 4096) + "\r\n");
        CliResult oversize = cli.Run("check", "--from", "a@example.com", "--rcpt", "team@lists.example.org", "--in", check("big.eml"));
        Assert.Equal(65, oversize.ExitCode);
        Assert.StartsWith("552 5.3.4 ", oversize.Output, StringComparison.Ordinal);

        // [Milter] MaxHeaderBytes as configured, not only its default.
        File.AppendAllText(cli.ConfigFile, "MaxHeaderBytes = 64K\n");
        File.WriteAllText(check("header70k.eml"), "X-Big: " + new string('a', 70 * 1024) + "\r\n\r\nbody\r\n");
        CliResult header = cli.Run("check", "--from", "a@example.com", "--rcpt", "someone@example.org", "--in", check("header70k.eml"));
        Assert.Equal(65, header.ExitCode);
        Assert.StartsWith("552 5.3.4 Message header size exceeds limit\n", header.Output, StringComparison.Ordinal);
        Assert.Contains("[Milter] MaxHeaderBytes = 65536)", header.Output, StringComparison.Ordinal);
    }

    private static (string Cert, string Key) Pair(string dir, string address)
    {
        string cert = Path.Combine(dir, address + ".crt.pem");
        string key = Path.Combine(dir, address + ".key.pem");
        Openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-keyout", key, "-out", cert, "-subj", $"/CN={address}",
            "-addext", $"subjectAltName=email:{address}", "-addext", "keyUsage=critical,keyEncipherment,digitalSignature");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (cert, key);
    }

    private static string Encrypt(string dir, string recipientCert, string name)
    {
        string entity = Path.Combine(dir, "entity.txt");
        File.WriteAllText(entity, Entity);
        string post = Path.Combine(dir, name);
        Openssl("cms", "-encrypt", "-aes256", "-binary", "-subject", "figures", "-in", entity, "-out", post, recipientCert);
        return post;
    }

    private static string Decrypt(string message, string cert, string key) =>
        TryDecrypt(message, cert, key) ?? throw new Xunit.Sdk.XunitException($"{cert} cannot decrypt {message}");

    private static string? TryDecrypt(string message, string cert, string key)
    {
        (int code, string output, _) = OpensslTool.TryRun("cms", "-decrypt", "-binary", "-recip", cert, "-inkey", key, "-in", message);
        return code == 0 ? output : null;
    }

    private static string Openssl(params string[] args) => OpensslTool.Run(args);
}
