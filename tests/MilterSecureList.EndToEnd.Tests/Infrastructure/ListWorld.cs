using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests.Infrastructure;

/// <summary>
/// One throwaway installation, shared by a test class: a SQLite directory and key files made with the
/// securelist CLI, securelist-milter started from the built binary, and a Postfix on loopback configured with
/// contrib/postfix (smtp-sink behind it). Senders and members are people with openssl-made certificates;
/// gina reads with gpgsm (throwaway GNUPGHOME), nina with NSS cmsutil (throwaway NSS db).
/// </summary>
[CollectionDefinition(Name)]
public sealed class ListWorldCollection : ICollectionFixture<ListWorld>
{
    public const string Name = "list world";
}

public class ListWorld : IAsyncLifetime
{
    public const string Domain = "lists.e2e.test";
    public const string PeopleDomain = "e2e.test";
    public const string Owner = "owner@e2e.test";
    public const string Crypto = "crypto@" + Domain;     // alice, bob (OAEP), carol, gina, nina
    public const string Plain = "plain@" + Domain;       // plaintext=pass: alice, bob
    public const string Closed = "closed@" + Domain;     // members-only: alice, carol
    public const string Skip = "skip@" + Domain;         // alice, erin (expired): missing-cert=skip (default)
    public const string Strict = "strict@" + Domain;     // alice, erin (expired): missing-cert=tempfail
    public const string Second = "second@" + Domain;     // alice, dave
    public const string All = "all@" + Domain;           // nested: crypto@ and dave
    public const string Quiet = "quiet@" + Domain;       // self-copy=no: alice, bob
    public const string GpgPassword = "e2e-pass";

    private readonly Dictionary<string, string> _listCerts = new(StringComparer.Ordinal);

    public string Dir { get; private set; } = "";

    public string Config => Path.Combine(Dir, "milter.ini");

    public string Socket => "unix:" + Path.Combine(Dir, "milter.sock");

    public SecureListPostfix Mta { get; private set; } = null!;

    public PostfixInstance Postfix => Mta.Postfix;

    public DaemonProcess Daemon { get; private set; } = null!;

    /// <summary>Ends the daemon (if still running) and starts it again with the same milter.ini and socket.</summary>
    public async Task RestartDaemonAsync()
    {
        await Daemon.DisposeAsync();
        Daemon = await DaemonProcess.StartAsync(await File.ReadAllTextAsync(Config));
    }

    public Dictionary<string, Identity> People { get; } = new(StringComparer.Ordinal);

    public Identity this[string name] => People[name];

    public string GnupgHome => Path.Combine(Dir, "gnupg");

    public string NssDb => "sql:" + Path.Combine(Dir, "nss");

    public Dictionary<string, string> GpgEnv => new() { ["GNUPGHOME"] = GnupgHome };

    /// <summary>Lists this world creates; a subclass may add its own in <see cref="CreateMoreAsync"/>.</summary>
    public string ListCert(string list) => _listCerts[list];

    public async Task InitializeAsync()
    {
        ExternalTool.RequireRoot("the end-to-end tests (Postfix)");
        foreach ((string tool, string pkg) in new[] { ("openssl", "openssl"), ("swaks", "swaks"), ("gpgsm", "gpgsm"), ("cmsutil", "libnss3-tools"), ("certutil", "libnss3-tools"), ("pk12util", "libnss3-tools"), ("smtp-sink", "postfix") })
        {
            ExternalTool.Require(tool, pkg);
        }

        Dir = System.IO.Directory.CreateTempSubdirectory("msl-e2e-").FullName;
        File.SetUnixFileMode(Dir, (UnixFileMode)0x1ED); // 0755: Postfix reaches the socket
        string people = System.IO.Directory.CreateDirectory(Path.Combine(Dir, "people")).FullName;

        // erin's certificate is valid when she is added and has expired by the time the daemon starts.
        DateTimeOffset erinExpires = DateTimeOffset.UtcNow.AddSeconds(Full ? 40 : 1);
        Identity[] ids = await Task.WhenAll(
            new[] { "alice", "bob", "carol", "gina", "nina", "dave", "mallory" }.Select(n => Identity.CreateAsync(people, n, PeopleDomain))
            .Append(Identity.CreateAsync(people, "erin", PeopleDomain, erinExpires)));
        foreach (Identity id in ids)
        {
            People[id.Name] = id;
        }

        await PrepareAsync();
        await WriteConfigAsync(smtpPort: 25);
        if (Full)
        {
            await CreateListAsync(Skip, "alice", "erin");
            await CreateListAsync(Strict, "alice", "erin");
            await SecureListCli.MustRunAsync(Config, "list", "set", Strict, "--option", "missing-cert=tempfail");
        }

        Mta = await SecureListPostfix.StartAsync(Socket, Domain);
        await WriteConfigAsync(Postfix.SmtpPort);

        await CreateListAsync(Crypto, "alice", "carol", "gina", "nina");
        await SecureListCli.MustRunAsync(Config, "member", "add", Crypto, this["bob"].Address, "--cert", this["bob"].CertPath, "--oaep");
        if (!Full)
        {
            await CreateMoreAsync();
            Daemon = await DaemonProcess.StartAsync(await File.ReadAllTextAsync(Config));
            await StartedAsync();
            return;
        }

        await CreateListAsync(Plain, "alice", "bob");
        await SecureListCli.MustRunAsync(Config, "list", "set", Plain, "--option", "plaintext=pass");
        await CreateListAsync(Closed, "alice", "carol");
        await SecureListCli.MustRunAsync(Config, "list", "set", Closed, "--policy", "members-only");
        await CreateListAsync(Second, "alice", "dave");
        await CreateListAsync(All, "dave");
        await SecureListCli.MustRunAsync(Config, "member", "add", All, Crypto);
        await CreateListAsync(Quiet, "alice", "bob");
        await SecureListCli.MustRunAsync(Config, "list", "set", Quiet, "--option", "self-copy=no");
        await CreateMoreAsync();

        await SetUpGpgsmAsync();
        await SetUpNssAsync();

        TimeSpan untilExpired = erinExpires - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(2);
        if (untilExpired > TimeSpan.Zero)
        {
            await Task.Delay(untilExpired);
        }

        Daemon = await DaemonProcess.StartAsync(await File.ReadAllTextAsync(Config));
        await StartedAsync();
    }

    /// <summary>False: only the crypto list, no expired member, no gpgsm/NSS (for the fault tests).</summary>
    protected virtual bool Full => true;

    /// <summary>The [Directory] lines naming the back end (SQLite in the temp dir unless a subclass says otherwise).</summary>
    protected virtual string DirectorySection => $"Provider = sqlite\nPath = {Dir}/lists.db";

    /// <summary>Hook for subclasses: runs first (e.g. start a database server).</summary>
    protected virtual Task PrepareAsync() => Task.CompletedTask;

    /// <summary>Hook for subclasses: more lists before the daemon starts.</summary>
    protected virtual Task CreateMoreAsync() => Task.CompletedTask;

    /// <summary>Hook for subclasses: runs last, with Postfix and the daemon up (e.g. start a second node).</summary>
    protected virtual Task StartedAsync() => Task.CompletedTask;

    public async Task CreateListAsync(string list, params string[] members)
    {
        await SecureListCli.MustRunAsync(Config, "list", "create", list, "--owner", Owner);
        foreach (string m in members)
        {
            await SecureListCli.MustRunAsync(Config, "member", "add", list, this[m].Address, "--cert", this[m].CertPath);
        }

        string pem = await SecureListCli.MustRunAsync(Config, "list", "export-cert", list);
        string path = Path.Combine(Dir, list + ".pem");
        await File.WriteAllTextAsync(path, pem);
        _listCerts[list] = path;
    }

    private Task WriteConfigAsync(int smtpPort) => File.WriteAllTextAsync(Config, MilterIni(Dir, Socket, smtpPort));

    /// <summary>The milter.ini of a node whose socket, key directory and log live in DIR (the directory section is shared).</summary>
    protected string MilterIni(string dir, string socket, int smtpPort) => $"""
        [Listener]
        Socket = {socket}
        SocketMode = 0666
        [Milter]
        Handler = lists
        [Directory]
        {DirectorySection}
        CacheRefreshSeconds = {CacheRefreshSeconds}
        [Keys]
        Directory = {dir}/keys
        [Notices]
        SmtpServer = 127.0.0.1:{smtpPort}
        From = securelist@e2e.test
        [Logging]
        File = {dir}/milter.log
        Level = info

        """;

    /// <summary>[Directory] CacheRefreshSeconds of every node.</summary>
    public const int CacheRefreshSeconds = 1;

    private async Task SetUpGpgsmAsync()
    {
        // gpg refuses a home directory others can read.
        System.IO.Directory.CreateDirectory(GnupgHome, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await File.WriteAllTextAsync(Path.Combine(GnupgHome, "gpg-agent.conf"), "allow-loopback-pinentry\n");
        await File.WriteAllTextAsync(Path.Combine(GnupgHome, "gpgsm.conf"), "disable-crl-checks\ndisable-policy-checks\n");
        var trust = new StringBuilder();
        foreach (string cert in new[] { ListCert(Crypto), this["gina"].CertPath })
        {
            await Tool.MustRunAsync("gpgsm", ["--batch", "--import", cert], env: GpgEnv);
            // Self-signed certificates: each is its own root, trusted explicitly (SHA-1 fingerprint, as gpgsm wants).
            using var c = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(cert);
            string fpr = c.GetCertHashString();
            trust.Append(string.Join(':', Enumerable.Range(0, 20).Select(i => fpr.Substring(2 * i, 2)))).Append(" S relax\n");
        }

        await File.WriteAllTextAsync(Path.Combine(GnupgHome, "trustlist.txt"), trust.ToString());
        string p12 = this["gina"].ExportLegacyPkcs12(Dir, GpgPassword);
        await Tool.MustRunAsync("gpgsm", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12], stdin: GpgPassword + "\n", env: GpgEnv);
    }

    private async Task SetUpNssAsync()
    {
        System.IO.Directory.CreateDirectory(Path.Combine(Dir, "nss"));
        await Tool.MustRunAsync("certutil", ["-N", "-d", NssDb, "--empty-password"]);
        await Tool.MustRunAsync("certutil", ["-A", "-d", NssDb, "-n", "crypto-list", "-t", "P,P,P", "-i", ListCert(Crypto)]);
        string p12 = this["nina"].ExportLegacyPkcs12(Dir, GpgPassword);
        await Tool.MustRunAsync("pk12util", ["-i", p12, "-d", NssDb, "-W", GpgPassword]);
    }

    // ---- senders -------------------------------------------------------------------------------------

    private string NewFile(string stem) => Path.Combine(Dir, $"{stem}-{Guid.NewGuid():N}");

    /// <summary><c>openssl cms -encrypt -binary</c> of <paramref name="entity"/> to the given certificates; returns the message file.</summary>
    public async Task<string> OpensslPostAsync(string from, string to, string subject, byte[] entity, string[] certs, params string[] options)
    {
        string input = NewFile("entity");
        await File.WriteAllBytesAsync(input, entity);
        string output = NewFile("post") + ".eml";
        var args = new List<string> { "cms", "-encrypt", "-binary", "-in", input, "-out", output, "-from", from, "-to", to, "-subject", subject };
        args.AddRange(options.TakeWhile(o => o != "-keyopt"));
        foreach (string cert in certs)
        {
            args.Add("-recip");
            args.Add(cert);
            args.AddRange(options.SkipWhile(o => o != "-keyopt")); // -keyopt applies to the -recip before it
        }

        await Tool.OpensslAsync([.. args]);
        return output;
    }

    /// <summary>The sender's S/MIME client is gpgsm (AES-128-CBC, BER); returns the message file.</summary>
    public async Task<string> GpgsmPostAsync(string from, string to, string subject, byte[] entity)
    {
        string input = NewFile("entity");
        await File.WriteAllBytesAsync(input, entity);
        string der = NewFile("gpgsm");
        await Tool.MustRunAsync("gpgsm", ["--batch", "--cipher-algo", "AES128", "-r", to, "-e", "-o", der, input], env: GpgEnv);
        byte[] cms = await File.ReadAllBytesAsync(der);
        Assert.True(cms.Length > 2 && cms[1] == 0x80, "gpgsm is expected to write BER with indefinite lengths");
        string output = NewFile("post") + ".eml";
        await File.WriteAllBytesAsync(output, Smime.Message(from, to, subject, cms));
        return output;
    }

    /// <summary>The sender's client is NSS (cmsutil -E, the engine in Thunderbird); returns the message file.</summary>
    public async Task<string> CmsutilPostAsync(string from, string to, string subject, byte[] entity)
    {
        string input = NewFile("entity");
        await File.WriteAllBytesAsync(input, entity);
        string der = NewFile("nss");
        await Tool.MustRunAsync("cmsutil", ["-E", "-r", to, "-i", input, "-o", der, "-d", NssDb]);
        string output = NewFile("post") + ".eml";
        await File.WriteAllBytesAsync(output, Smime.Message(from, to, subject, await File.ReadAllBytesAsync(der)));
        return output;
    }

    /// <summary>A plain (unencrypted) message file.</summary>
    public async Task<string> PlainPostAsync(string from, string to, string subject, string text)
    {
        string output = NewFile("plain") + ".eml";
        await File.WriteAllTextAsync(output, $"From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@e2e.test>\r\n\r\n{text}\r\n");
        return output;
    }

    /// <summary>swaks, a second real SMTP client, against the milter-protected smtpd (or <paramref name="port"/>).</summary>
    public async Task<Swaks> SendAsync(string from, IEnumerable<string> to, string messageFile, int? port = null)
    {
        (int rc, string o, string e) = await ExternalTool.RunAsync("swaks",
            ["--server", $"127.0.0.1:{port ?? Postfix.SmtpPort}", "--from", from, "--to", string.Join(',', to), "--data", messageFile, "--hide-informational"],
            TimeSpan.FromSeconds(120));
        return new Swaks(rc, o + e);
    }

    // ---- what members received -------------------------------------------------------------------------

    /// <summary>
    /// Waits (bounded) for the first <paramref name="transactions"/> sink messages whose Subject is
    /// <paramref name="subject"/>, then until Postfix has finished with the messages they came from (a split
    /// delivery may still be under way), and returns every such transaction.
    /// </summary>
    public async Task<IReadOnlyList<SinkMessage>> ReceivedAsync(string subject, int transactions = 1)
    {
        IReadOnlyList<SinkMessage> hits = await Poll.ForAsync(
            () =>
            {
                try
                {
                    List<SinkMessage> found = [.. Postfix.ReadSinkMessages().Where(m => HasSubject(m, subject))];
                    return found.Count >= transactions ? found : null;
                }
                catch (IOException)
                {
                    return null; // smtp-sink is still writing the file; the next round reads it
                }
            },
            $"{transactions} message(s) with Subject {subject} at smtp-sink",
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100),
            () => $"maillog tail:\n{Tail(Postfix.ReadMailLog(), 15)}\nmilter log tail:\n{Tail(MilterLog(), 10)}");
        await Postfix.WaitForDoneAsync(hits, TimeSpan.FromSeconds(60));
        return [.. Postfix.ReadSinkMessages().Where(m => HasSubject(m, subject))];
    }

    /// <summary>Sink messages with this subject, now (for asserting that nothing arrived).</summary>
    public IReadOnlyList<SinkMessage> ReceivedNow(string subject) => [.. Postfix.ReadSinkMessages().Where(m => HasSubject(m, subject))];

    public static bool HasSubject(SinkMessage m, string subject) =>
        m.Headers.Split('\n').Any(l => l.StartsWith("Subject:", StringComparison.OrdinalIgnoreCase) && l["Subject:".Length..].Trim() == subject);

    /// <summary>Waits (bounded) until the milter's log file contains <paramref name="text"/>: the daemon writes its log
    /// asynchronously, in batches.</summary>
    public Task WaitForMilterLogAsync(string text, TimeSpan? timeout = null) =>
        Poll.UntilAsync(() => MilterLog().Contains(text, StringComparison.Ordinal), $"'{text}' in the milter log", timeout,
            evidence: () => Tail(MilterLog(), 10));

    public string MilterLog()
    {
        string path = Path.Combine(Dir, "milter.log");
        if (!File.Exists(path))
        {
            return "";
        }

        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(fs).ReadToEnd();
    }

    public static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));

    /// <summary>Writes the received message (without smtp-sink's X- envelope lines) to a file a member's client can read.</summary>
    public string Save(SinkMessage m)
    {
        string path = NewFile("received") + ".eml";
        File.WriteAllText(path, m.Headers + "\n" + m.Body);
        return path;
    }

    /// <summary>openssl cms -decrypt with the member's own key; null when openssl refuses.</summary>
    public async Task<byte[]?> OpensslDecryptAsync(SinkMessage m, Identity who)
    {
        string output = NewFile("dec-" + who.Name);
        (int rc, _, _) = await Tool.RunAsync("openssl", ["cms", "-decrypt", "-binary", "-recip", who.CertPath, "-inkey", who.KeyPath, "-in", Save(m), "-out", output]);
        return rc == 0 ? await File.ReadAllBytesAsync(output) : null;
    }

    /// <summary>gina's gpgsm; null when gpgsm refuses.</summary>
    public async Task<byte[]?> GpgsmDecryptAsync(SinkMessage m)
    {
        string der = NewFile("der");
        await File.WriteAllBytesAsync(der, Smime.CmsOf(m.Headers + "\n" + m.Body));
        string output = NewFile("dec-gina");
        (int rc, _, string err) = await Tool.RunAsync("gpgsm", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", "-o", output, der], stdin: GpgPassword + "\n", env: GpgEnv);
        // gpgsm 2.2 exits 2 after a good decryption when it could not look up the certificates of the OTHER
        // recipients ("failed to find the certificate"), which a member normally does not hold. Success is
        // therefore: gpgsm names the member's own key and writes the plaintext, and reports no decryption error.
        bool decrypted = rc == 0 || (err.Contains("encrypted to rsa", StringComparison.Ordinal) && !err.Contains("decryption failed", StringComparison.OrdinalIgnoreCase)
            && File.Exists(output) && new FileInfo(output).Length > 0);
        return decrypted ? await File.ReadAllBytesAsync(output) : null;
    }

    /// <summary>nina's NSS cmsutil; null when NSS refuses.</summary>
    public async Task<byte[]?> CmsutilDecryptAsync(SinkMessage m)
    {
        string der = NewFile("der");
        await File.WriteAllBytesAsync(der, Smime.CmsOf(m.Headers + "\n" + m.Body));
        string output = NewFile("dec-nina");
        (int rc, _, _) = await Tool.RunAsync("cmsutil", ["-D", "-i", der, "-o", output, "-d", NssDb, "-p", ""]);
        return rc == 0 ? await File.ReadAllBytesAsync(output) : null;
    }

    /// <summary>SHA-256 of a list certificate in the form the reply text gives it (hex, upper case).</summary>
    public string Fingerprint(string list)
    {
        using var c = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(ListCert(list));
        return Convert.ToHexString(c.GetCertHash(HashAlgorithmName.SHA256));
    }

    public virtual async Task DisposeAsync()
    {
        if (Daemon is not null)
        {
            await Daemon.DisposeAsync();
        }

        if (Mta is not null)
        {
            await Mta.DisposeAsync();
        }

        if (System.IO.Directory.Exists(GnupgHome))
        {
            await Tool.RunAsync("gpgconf", ["--kill", "gpg-agent"], env: GpgEnv);
        }

        if (Environment.GetEnvironmentVariable("KEEP") != "1" && Dir.Length > 0)
        {
            try
            {
                System.IO.Directory.Delete(Dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}

/// <summary>One swaks run: exit code and the whole SMTP transcript.</summary>
public sealed record Swaks(int ExitCode, string Transcript)
{
    /// <summary>The server lines (<c>&lt;~</c> / <c>&lt;**</c>) of the transcript.</summary>
    public IEnumerable<string> ServerLines => Transcript.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('<'));

    public bool Accepted => ExitCode == 0 && ServerLines.Any(l => l.Contains(" 250 2.0.0 Ok: queued", StringComparison.Ordinal));

    public override string ToString() => $"swaks exit {ExitCode}:\n{Transcript}";
}
