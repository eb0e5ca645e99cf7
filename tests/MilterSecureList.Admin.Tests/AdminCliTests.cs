using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using MilterSecureList.Directory.Tests.Fixtures;
using MilterSecureList.Testing;

namespace MilterSecureList.Admin.Tests;

/// <summary>Every verb and every refusal of <c>securelist</c>, on SQLite and PostgreSQL.</summary>
[Collection(BackendCollection.Name)]
public sealed class AdminCliTests(BackendFixture fixture)
{
    public static TheoryData<string> Backends => BackendFixture.Names;

    private CliHarness Open(string backend) => new(fixture, backend);

    [Theory]
    [MemberData(nameof(Backends))]
    public void ListVerbsCreateShowListExportRolloverSetDelete(string backend)
    {
        using CliHarness cli = Open(backend);

        Assert.False(System.IO.Directory.Exists(cli.KeysDirectory));
        CliResult created = cli.Run("list", "create", "news@example.org", "--owner", "boss@example.org", "--key-type", "p256").AssertOk();
        Assert.Contains("created list news@example.org (rekey), key EC P-256", created.Output, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(cli.KeysDirectory));
        cli.Run("list", "create", "double@example.org", "--mode", "double").AssertOk();

        CliResult ls = cli.Run("list", "ls").AssertOk();
        Assert.Contains("news@example.org", ls.Output, StringComparison.Ordinal);
        Assert.Contains("double@example.org", ls.Output, StringComparison.Ordinal);
        Assert.Contains("boss@example.org", ls.Output, StringComparison.Ordinal);

        CliResult exported = cli.Run("list", "export-cert", "news@example.org").AssertOk();
        Assert.StartsWith("-----BEGIN CERTIFICATE-----", exported.Output, StringComparison.Ordinal);
        string pemFile = cli.Temp.File("news.pem");
        File.WriteAllText(pemFile, exported.Output);
        // An independent reader: openssl must see the list address and an encryption-capable key.
        string text = Openssl("x509", "-in", pemFile, "-noout", "-email", "-ext", "keyUsage,extendedKeyUsage");
        Assert.Contains("news@example.org", text, StringComparison.Ordinal);
        Assert.Contains("Key Agreement", text, StringComparison.Ordinal);
        Assert.Contains("E-mail Protection", text, StringComparison.Ordinal);

        CliResult rolled = cli.Run("list", "rollover", "news@example.org").AssertOk();
        Assert.Contains("new current key", rolled.Output, StringComparison.Ordinal);
        Assert.NotEqual(exported.Output, cli.Run("list", "export-cert", "news@example.org").AssertOk().Output);

        CliResult set = cli.Run("list", "set", "news@example.org", "--policy", "members-only", "--option", "plaintext=pass", "--option", "missing-cert=tempfail").AssertOk();
        Assert.Contains("posting members-only, options missing-cert=tempfail, plaintext=pass", set.Output, StringComparison.Ordinal);

        CliResult shown = cli.Run("list", "show", "news@example.org").AssertOk();
        Assert.Contains("members-only", shown.Output, StringComparison.Ordinal);
        Assert.Contains("current", shown.Output, StringComparison.Ordinal);
        Assert.Contains("active", shown.Output, StringComparison.Ordinal);
        Assert.Contains("key files: ok", shown.Output, StringComparison.Ordinal);

        cli.Run("list", "delete", "double@example.org").AssertOk();
        Assert.DoesNotContain("double@example.org", cli.Run("list", "ls").AssertOk().Output, StringComparison.Ordinal);
        Assert.Equal(2, System.IO.Directory.GetFiles(cli.KeysDirectory).Length); // news: two keys; double's key file removed
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ListCreateImportsACaIssuedCertificateAndKey(string backend)
    {
        using CliHarness cli = Open(backend);
        string key = cli.Temp.File("ca.key");
        string cert = cli.Temp.File("ca.pem");
        Openssl("req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=List", "-addext", "subjectAltName=email:ca@example.org", "-addext", "keyUsage=keyEncipherment", "-days", "365");

        cli.Run("list", "create", "ca@example.org", "--cert", cert, "--key", key).AssertOk();

        Assert.Equal(File.ReadAllText(cert).Trim(), cli.Run("list", "export-cert", "ca@example.org").AssertOk().Output.Trim());
        Assert.Contains("RSA-3072", cli.Run("list", "show", "ca@example.org").AssertOk().Output, StringComparison.Ordinal);
        cli.Run("list", "create", "x@example.org", "--cert", cert).AssertUserError("--cert and --key go together");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void MemberVerbsAddListSetRemoveAndNest(string backend)
    {
        using CliHarness cli = Open(backend);
        cli.Run("list", "create", "news@example.org", "--key-type", "p256").AssertOk();
        cli.Run("list", "create", "team@example.org", "--key-type", "p256").AssertOk();

        cli.Run("member", "add", "news@example.org", "alice@example.org", "--cert", cli.MemberCert("alice@example.org"), "--oaep").AssertOk();
        cli.Run("member", "add", "team@example.org", "bob@example.org", "--cert", cli.MemberCert("bob@example.org")).AssertOk();
        cli.Run("member", "add", "news@example.org", "team@example.org").AssertOk();
        cli.Run("member", "set", "news@example.org", "alice@example.org", "--no-oaep", "--delivery", "off").AssertOk();

        CliResult ls = cli.Run("member", "ls", "news@example.org").AssertOk();
        Assert.Contains("alice@example.org", ls.Output, StringComparison.Ordinal);
        Assert.Contains("nested list", ls.Output, StringComparison.Ordinal);
        Assert.Contains("usable", ls.Output, StringComparison.Ordinal);
        Assert.Contains("off", ls.Output, StringComparison.Ordinal);
        Assert.Contains("2 member(s)", ls.Output, StringComparison.Ordinal);

        using (SqlDirectoryStore store = SqlDirectoryStore.Open(cli.Options, TimeProvider.System))
        {
            var directory = new ListDirectory(store, new ListKeyStore(new KeysOptions { Directory = cli.KeysDirectory }), TimeProvider.System);
            ExpandedList expanded = directory.Expand("news@example.org");
            Assert.Equal(["alice@example.org", "bob@example.org"], expanded.Members.Select(m => m.Address));
            Assert.False(expanded.Members[0].UseOaep);
            Assert.False(expanded.Members[0].DeliveryEnabled);
        }

        cli.Run("member", "remove", "news@example.org", "alice@example.org").AssertOk();
        Assert.Contains("1 member(s)", cli.Run("member", "ls", "news@example.org").AssertOk().Output, StringComparison.Ordinal);
        cli.Run("member", "set", "news@example.org", "team@example.org").AssertUserError("nothing to change");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void MemberImportFromDirectoryAndCsvSummarisesRefusals(string backend)
    {
        using CliHarness cli = Open(backend);
        cli.Run("list", "create", "news@example.org", "--key-type", "p256").AssertOk();
        string dir = cli.Temp.File("certs");
        System.IO.Directory.CreateDirectory(dir);
        for (int i = 0; i < 5; i++)
        {
            cli.MemberCert($"m{i}@example.org", fileName: $"certs/m{i}@example.org.pem");
        }

        cli.MemberCert("someone@example.org", fileName: "certs/m9@example.org.pem"); // mismatch
        File.WriteAllText(Path.Combine(dir, "broken.pem"), "not a certificate");
        File.WriteAllText(Path.Combine(dir, "README.txt"), "ignored: not a certificate extension");

        CliResult fromDir = cli.Run("member", "import", "news@example.org", "--dir", dir).AssertOk();

        Assert.Contains("5 accepted, 2 refused", fromDir.Output, StringComparison.Ordinal);
        Assert.Equal(string.Empty, fromDir.Error); // not a terminal: no progress bar
        Assert.Contains("broken.pem", fromDir.Output, StringComparison.Ordinal);
        Assert.Contains("issued to someone@example.org, not m9@example.org", fromDir.Output, StringComparison.Ordinal);

        string csv = cli.Temp.File("members.csv");
        File.WriteAllLines(csv,
        [
            "address,certificate,oaep",
            $"x@example.org,{Path.GetFileName(cli.MemberCert("x@example.org"))},oaep",
            $"m0@example.org,{Path.GetFileName(cli.MemberCert("m0@example.org"))}",
            "y@example.org,missing.pem",
            "# comment",
        ]);
        CliResult fromCsv = cli.Run("member", "import", "news@example.org", "--csv", csv).AssertOk();

        Assert.Contains("1 accepted, 2 refused", fromCsv.Output, StringComparison.Ordinal);
        Assert.Contains("members.csv:3", fromCsv.Output, StringComparison.Ordinal);
        Assert.Contains("already a member", fromCsv.Output, StringComparison.Ordinal);
        Assert.Contains("no such file", fromCsv.Output, StringComparison.Ordinal);
        Assert.Contains("6 member(s)", cli.Run("member", "ls", "news@example.org").AssertOk().Output, StringComparison.Ordinal);

        cli.Run("member", "import", "news@example.org").AssertUserError("exactly one of --dir DIR or --csv FILE");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void EveryRefusalIsOneLineWithExitCode2(string backend)
    {
        using CliHarness cli = Open(backend);
        cli.Run("list", "create", "news@example.org", "--key-type", "p256").AssertOk();
        cli.Run("list", "create", "a@example.org", "--key-type", "p256").AssertOk();
        cli.Run("list", "create", "b@example.org", "--key-type", "p256").AssertOk();
        cli.Run("member", "add", "a@example.org", "b@example.org").AssertOk();
        cli.Run("member", "add", "news@example.org", "alice@example.org", "--cert", cli.MemberCert("alice@example.org")).AssertOk();
        string badPem = cli.Temp.File("bad.pem");
        File.WriteAllText(badPem, "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n");
        using X509Certificate2 k1 = TestCertificates.Ec("k1@example.org", ECCurve.CreateFromFriendlyName("secp256k1"));
        string wrongType = TestCertificates.WritePem(k1, cli.Temp.File("k1.pem"));
        DateTimeOffset now = DateTimeOffset.UtcNow;

        cli.Run("member", "add", "news@example.org", "bad@example.org", "--cert", badPem).AssertUserError("bad.pem: malformed certificate");
        cli.Run("member", "add", "news@example.org", "k1@example.org", "--cert", wrongType).AssertUserError("EC curve 1.3.132.0.10 is not supported");
        cli.Run("member", "add", "news@example.org", "weak@example.org", "--cert", cli.MemberCert("weak@example.org", bits: 1024)).AssertUserError("RSA key of 1024 bits is too small");
        cli.Run("member", "add", "news@example.org", "old@example.org", "--cert", cli.MemberCert("old@example.org", notBefore: now.AddYears(-2), notAfter: now.AddDays(-1))).AssertUserError("certificate expired on");
        cli.Run("member", "add", "news@example.org", "eve@example.org", "--cert", cli.MemberCert("alice@example.org")).AssertUserError("issued to alice@example.org, not eve@example.org (use --allow-mismatch");
        cli.Run("member", "add", "news@example.org", "Alice@example.org", "--cert", cli.MemberCert("alice@example.org")).AssertUserError("Alice@example.org is already a member of news@example.org");
        cli.Run("member", "add", "ghost@example.org", "alice@example.org", "--cert", cli.MemberCert("alice@example.org")).AssertUserError("no list ghost@example.org in the directory");
        cli.Run("member", "add", "b@example.org", "a@example.org").AssertUserError("would create a cycle: b@example.org -> a@example.org -> b@example.org");
        cli.Run("member", "add", "news@example.org", "nocert@example.org").AssertUserError("nocert@example.org needs a certificate: give --cert FILE");
        cli.Run("member", "add", "news@example.org", "not-an-address", "--cert", badPem).AssertUserError("'not-an-address' is not a valid mail address");
        cli.Run("member", "remove", "news@example.org", "nobody@example.org").AssertUserError("nobody@example.org is not a member of news@example.org");
        cli.Run("list", "create", "news@example.org").AssertUserError("list news@example.org already exists");
        cli.Run("list", "show", "ghost@example.org").AssertUserError("no list ghost@example.org");
        cli.Run("list", "export-cert", "ghost@example.org").AssertUserError("no list ghost@example.org");
        cli.Run("list", "delete", "b@example.org").AssertUserError("b@example.org is a member of a@example.org");
        cli.Run("list", "set", "news@example.org", "--option", "plaintext=maybe").AssertUserError("option plaintext: 'maybe' is not one of reject|pass");
        cli.Run("list", "create", "z@example.org", "--mode", "triple").AssertUserError("--mode 'triple' is not one of rekey, double");
        cli.Run("list", "create", "z@example.org", "--key-type", "rsa1024").AssertUserError("--key-type 'rsa1024'");

        // World-readable key file: refused when the keys are loaded (list show loads them as the daemon does).
        string keyFile = System.IO.Directory.GetFiles(cli.KeysDirectory)[0];
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        string owner = Path.GetFileName(keyFile).Split(".20")[0];
        cli.Run("list", "show", owner).AssertUserError($"private key file {keyFile} has mode 0604");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        // Group/world-readable key directory: refused before a key is written.
        File.SetUnixFileMode(cli.KeysDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        cli.Run("list", "rollover", "news@example.org").AssertUserError($"key directory {cli.KeysDirectory} has mode 0705");
        cli.Run("list", "create", "new@example.org").AssertUserError("group or others can access it");
        Assert.DoesNotContain("new@example.org", cli.Run("list", "ls").AssertOk().Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void PassphraseFileProtectsGeneratedKeys(string backend)
    {
        using CliHarness cli = Open(backend);
        string passphrase = cli.Temp.File("passphrase");
        File.WriteAllText(passphrase, "s3cret passphrase\n");
        File.SetUnixFileMode(passphrase, UnixFileMode.UserRead);
        File.AppendAllText(cli.ConfigFile, $"PassphraseFile = {passphrase}\n");

        cli.Run("list", "create", "news@example.org", "--key-type", "rsa2048").AssertOk();

        string keyFile = System.IO.Directory.GetFiles(cli.KeysDirectory).Single();
        Assert.StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----", File.ReadAllText(keyFile), StringComparison.Ordinal);
        Assert.Contains("key files: ok", cli.Run("list", "show", "news@example.org").AssertOk().Output, StringComparison.Ordinal);
        File.SetUnixFileMode(passphrase, UnixFileMode.UserRead | UnixFileMode.GroupRead);
        cli.Run("list", "show", "news@example.org").AssertUserError($"private key file {passphrase} has mode 0440");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void MemberAddAcceptsDerAndPkcs12Certificates(string backend)
    {
        using CliHarness cli = Open(backend);
        cli.Run("list", "create", "news@example.org", "--key-type", "p256").AssertOk();
        using X509Certificate2 der = TestCertificates.Rsa("der@example.org");
        using X509Certificate2 p12 = TestCertificates.Rsa("p12@example.org");
        string derFile = TestCertificates.WriteDer(der, cli.Temp.File("der.cer"));
        string p12File = TestCertificates.WritePkcs12(p12, 2048, "pw", cli.Temp.File("p12.p12"));

        cli.Run("member", "add", "news@example.org", "der@example.org", "--cert", derFile).AssertOk();
        cli.Run("member", "add", "news@example.org", "p12@example.org", "--cert", p12File).AssertUserError("wrong PKCS#12 password");
        cli.Run("member", "add", "news@example.org", "p12@example.org", "--cert", p12File, "--cert-password", "pw").AssertOk();

        Assert.Contains("2 member(s)", cli.Run("member", "ls", "news@example.org").AssertOk().Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rsa2048")]
    [InlineData("p256")]
    [InlineData("p384")]
    public void OpensslSendersEncryptToTheExportedCertificateAndTheStoredKeyDecrypts(string keyType)
    {
        // Real peer: openssl cms as the sender (ktri for RSA, kari/ECDH for EC) and as the
        // decryptor with the key file the CLI wrote. Proves the list certificate is what senders need.
        using CliHarness cli = Open("sqlite");
        cli.Run("list", "create", "news@example.org", "--key-type", keyType).AssertOk();
        string certFile = cli.Temp.File("news.pem");
        File.WriteAllText(certFile, cli.Run("list", "export-cert", "news@example.org").AssertOk().Output);
        string plain = cli.Temp.File("plain.txt");
        File.WriteAllText(plain, "Content-Type: text/plain\r\n\r\nhello list\r\n");
        string encrypted = cli.Temp.File("msg.p7m");
        Openssl("cms", "-encrypt", "-aes-256-cbc", "-in", plain, "-out", encrypted, "-outform", "DER", certFile);

        string keyFile = System.IO.Directory.GetFiles(cli.KeysDirectory).Single();
        string decrypted = cli.Temp.File("out.txt");
        Openssl("cms", "-decrypt", "-in", encrypted, "-inform", "DER", "-recip", certFile, "-inkey", keyFile, "-out", decrypted);

        Assert.Equal(File.ReadAllText(plain), File.ReadAllText(decrypted));
    }

    [Fact]
    public void UsageErrorsExitWith2AndOneLine()
    {
        CliHarness.RunRaw("list", "create").AssertUserError("list create: missing ADDRESS (usage: securelist list create ADDRESS [options])");
        CliHarness.RunRaw("frobnicate").AssertUserError("frobnicate");
        CliHarness.RunRaw("member", "add", "a@example.org").AssertUserError("member add: missing ADDRESS (usage: securelist member add LIST ADDRESS [options])");
    }

    [Fact]
    public void HelpWorksAndListsTheVerbs()
    {
        CliResult help = CliHarness.RunRaw("--help");

        Assert.Equal(0, help.ExitCode);
        Assert.Contains("list", help.Output, StringComparison.Ordinal);
        Assert.Contains("member", help.Output, StringComparison.Ordinal);
        Assert.Contains("--config", help.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void BadConfigurationNamesTheSectionAndKey()
    {
        using var temp = new TempDirectory();
        string ini = temp.File("milter.ini");

        CliHarness.RunRaw("list", "ls", "--config", temp.File("absent.ini")).AssertUserError($"configuration file {temp.File("absent.ini")} not found");
        File.WriteAllText(ini, "[Directory]\nProvider = mysql\n[Keys]\nDirectory = /tmp/k\n");
        CliHarness.RunRaw("list", "ls", "--config", ini).AssertUserError($"{ini}:2: [Directory] Provider: 'mysql' is not one of sqlite, postgres");
        File.WriteAllText(ini, "[Directory]\nCacheRefreshSeconds = soon\n[Keys]\nDirectory = /tmp/k\n");
        CliHarness.RunRaw("--config", ini, "list", "ls").AssertUserError($"{ini}:2: [Directory] CacheRefreshSeconds: 'soon'");
        File.WriteAllText(ini, "[Directory]\nProvider = postgres\n[Keys]\nDirectory = /tmp/k\n");
        CliHarness.RunRaw("list", "ls", "--config", ini).AssertUserError($"{ini}:1: [Directory] ConnectionString: required when Provider = postgres");
        File.WriteAllText(ini, $"[Directory]\nPath = {temp.File("x.db")}\n[Keys]\nDirectory = relative/keys\n");
        CliHarness.RunRaw("list", "ls", "--config", ini).AssertUserError($"{ini}:4: [Keys] Directory: 'relative/keys' must be an absolute path");
        File.WriteAllText(ini, "[Directory\nbroken");
        CliHarness.RunRaw("list", "ls", "--config", ini).AssertUserError($"{ini}:1: [Directory: a section header is [Name]");
        File.WriteAllText(ini, $"[Directory]\nPath = {temp.File("x.db")}\nPath = {temp.File("y.db")}\n");
        CliHarness.RunRaw("list", "ls", "--config", ini).AssertUserError($"{ini}:3: [Directory] Path: set twice (first on line 2); keep one");
        File.WriteAllText(ini, "[Keys]\nDirectory /var/lib/keys\n");
        CliHarness.RunRaw("list", "ls", "--config", ini).AssertUserError($"{ini}:2: [Keys] Directory /var/lib/keys: not a 'Key = value' line");
    }

    [Fact]
    public void UnreachableDatabaseIsAFailureExit1WithOneLine()
    {
        using var temp = new TempDirectory();
        string ini = temp.File("milter.ini");
        int closedPort;
        using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }

        File.WriteAllText(ini, $"[Directory]\nProvider = postgres\nConnectionString = Host=127.0.0.1;Port={closedPort};Username=x;Timeout=3\n[Keys]\nDirectory = {temp.File("keys")}\n");

        CliResult result = CliHarness.RunRaw("--config", ini, "list", "ls");

        Assert.Equal(1, result.ExitCode);
        result.AssertOneLine("directory database (Postgres)");
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ConfigOptionIsAcceptedBeforeOrAfterTheVerb(string backend)
    {
        using CliHarness cli = Open(backend);
        CliHarness.RunRaw("--config", cli.ConfigFile, "list", "create", "news@example.org", "--key-type", "p256").AssertOk();

        Assert.Contains("news@example.org", CliHarness.RunRaw("list", "ls", "--config", cli.ConfigFile).AssertOk().Output, StringComparison.Ordinal);
        Assert.Contains("news@example.org", CliHarness.RunRaw("list", "--config", cli.ConfigFile, "ls").AssertOk().Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CliWritesWhileADaemonReadsAndTheDaemonSeesEachChangeWithinFiveSeconds(string backend)
    {
        using CliHarness cli = Open(backend);
        cli.Run("list", "create", "news@example.org", "--key-type", "p256").AssertOk();
        using SqlDirectoryStore store = SqlDirectoryStore.Open(cli.Options, TimeProvider.System);
        var keys = new ListKeyStore(new KeysOptions { Directory = cli.KeysDirectory });
        using var daemon = new CachingListDirectory(new ListDirectory(store, keys, TimeProvider.System), cli.Options, TimeProvider.System);

        // The "daemon" keeps reading (expansions and keys) on another thread while the CLI writes.
        using var stop = new CancellationTokenSource();
        Exception? readerFailure = null;
        long reads = 0;
        var reader = new Thread(() =>
        {
            try
            {
                var uncached = new ListDirectory(store, keys, TimeProvider.System);
                while (!stop.IsCancellationRequested)
                {
                    daemon.Expand("news@example.org");
                    Assert.NotEmpty(daemon.GetListKeys("news@example.org"));
                    // Real database reads racing the CLI's write transactions (WAL + busy timeout on SQLite).
                    uncached.Expand("news@example.org");
                    Interlocked.Increment(ref reads);
                }
            }
            catch (Exception e)
            {
                readerFailure = e;
            }
        });
        reader.Start();

        for (int i = 0; i < 3; i++)
        {
            cli.Run("member", "add", "news@example.org", $"m{i}@example.org", "--cert", cli.MemberCert($"m{i}@example.org")).AssertOk();
            int expected = i + 1;
            Poll.Until(() => daemon.Expand("news@example.org").Members.Count == expected, $"the daemon's directory to show member {expected}", TimeSpan.FromSeconds(5));
        }

        cli.Run("list", "rollover", "news@example.org").AssertOk();
        Poll.Until(() => daemon.GetListKeys("news@example.org").Count == 2, "the daemon's directory to show the rollover", TimeSpan.FromSeconds(5));
        stop.Cancel();
        reader.Join();

        Assert.Null(readerFailure);
        Assert.True(Interlocked.Read(ref reads) > 0);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void TheBuiltBinaryRunsTheSameVerbs(string backend)
    {
        using CliHarness cli = Open(backend);

        CliResult created = cli.RunBinary("list", "create", "news@example.org", "--key-type", "rsa2048").AssertOk();
        Assert.Contains("key RSA-2048", created.Output, StringComparison.Ordinal);
        cli.RunBinary("member", "add", "news@example.org", "alice@example.org", "--cert", cli.MemberCert("alice@example.org")).AssertOk();
        CliResult exported = cli.RunBinary("list", "export-cert", "news@example.org").AssertOk();
        using X509Certificate2 cert = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(string.Concat(exported.Output.Split('\n').Where(l => !l.StartsWith("-----", StringComparison.Ordinal)))));
        Assert.True(CertificateInspector.MatchesAddress(cert, "news@example.org"));
        Assert.Contains("alice@example.org", cli.RunBinary("member", "ls", "news@example.org").AssertOk().Output, StringComparison.Ordinal);

        cli.RunBinary("member", "add", "ghost@example.org", "alice@example.org", "--cert", cli.MemberCert("alice@example.org")).AssertUserError("no list ghost@example.org");
        cli.RunBinary("list").AssertUserError("(see securelist list --help)");
    }

    private static string Openssl(params string[] args) => OpensslTool.Run(args);
}
