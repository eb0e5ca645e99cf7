using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using MilterSecureList.KeyServer;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>One member: its own RSA key (never shared with another member, so forgeries are real), PEM files for openssl.</summary>
public sealed record TestMember(string Address, X509Certificate2 Certificate, RSA Key, string CertificateFile, string KeyFile);

/// <summary>
/// A release list on a fresh SQLite directory, the key server's three key pairs (TLS for 127.0.0.1, release, the milter's
/// client certificate) as files, a keyd.ini, and the key server itself over TLS on a loopback port. Everything lives in a
/// temp directory removed at the end.
/// </summary>
public sealed class ReleaseWorld : IAsyncDisposable
{
    public const string List = "crypto@lists.test";

    private readonly Dictionary<string, TestMember> _members = new(StringComparer.OrdinalIgnoreCase);

    public ReleaseWorld(DirectoryOptions? directory = null)
    {
        Root = System.IO.Directory.CreateTempSubdirectory("keyrel-").FullName;
        File.SetUnixFileMode(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        DirectoryOptions = directory ?? new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = Path.Combine(Root, "lists.db"), CacheRefreshSeconds = 1 };
        Keys = new KeysOptions { Directory = Path.Combine(Root, "keys") };
        System.IO.Directory.CreateDirectory(Keys.Directory);
        File.SetUnixFileMode(Keys.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Store = SqlDirectoryStore.Open(DirectoryOptions, TimeProvider.System);
        KeyStore = new ListKeyStore(Keys);
        Admin = new ListAdministration(Store, KeyStore, TimeProvider.System);
        Admin.CreateList(List, ListMode.Rekey, "owner@lists.test", ListKeyType.Rsa2048);
        Admin.SetList(List, null, null, null, ["release=on"]);

        (TlsCertificate, TlsKeyFile) = WritePair("tls", SelfSigned("CN=127.0.0.1", tls: true));
        (ReleaseCertificate, ReleaseKeyFile) = WritePair("release", SelfSigned("CN=securelist-keyd release", tls: false));
        (X509Certificate2 client, string clientKey) = WritePair("milter-client", SelfSigned("CN=securelist-milter", tls: true));
        MilterClient = X509Certificate2.CreateFromPemFile(Path.Combine(Root, "milter-client.pem"), clientKey);
        Port = ExternalTool.FreeTcpPort();
        ConfigFile = Path.Combine(Root, "keyd.ini");
        File.WriteAllText(ConfigFile, $"""
            [KeyServer]
            Listen = 127.0.0.1:{Port}
            TlsCertificate = {Path.Combine(Root, "tls.pem")}
            TlsKey = {TlsKeyFile}
            ReleaseCertificate = {Path.Combine(Root, "release.pem")}
            ReleaseKey = {ReleaseKeyFile}
            DepositClients = {client.GetCertHashString(HashAlgorithmName.SHA256)}
            RateLimit = 1000
            [Directory]
            {DirectoryLines}
            CacheRefreshSeconds = 1
            """);
        Url = new Uri($"https://127.0.0.1:{Port}/");
        ReleaseRecipient = CmsRecipient.FromCertificate(ReleaseCertificate);
    }

    public string Root { get; }

    /// <summary>The [Directory] section's lines for this world's database (keyd.ini, milter.ini).</summary>
    public string DirectoryLines => DirectoryOptions.Provider == DirectoryProvider.Sqlite
        ? $"Provider = sqlite\nPath = {DirectoryOptions.Path}"
        : $"Provider = postgres\nConnectionString = {DirectoryOptions.ConnectionString}";

    /// <summary>A milter.ini for <c>securelist</c> commands on this world's directory and keys; returns its path.</summary>
    public string WriteMilterIni()
    {
        string path = Path.Combine(Root, "milter.ini");
        File.WriteAllText(path, $"[Directory]\n{DirectoryLines}\n[Keys]\nDirectory = {Keys.Directory}\n");
        return path;
    }

    /// <summary>The admin CLI in-process: exit code, standard output, standard error.</summary>
    public static (int Code, string Output, string Error) Cli(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = global::MilterSecureList.Admin.AdminCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    public DirectoryOptions DirectoryOptions { get; }

    public KeysOptions Keys { get; }

    public SqlDirectoryStore Store { get; }

    public ListKeyStore KeyStore { get; }

    public ListAdministration Admin { get; }

    public X509Certificate2 TlsCertificate { get; }

    public string TlsKeyFile { get; }

    public X509Certificate2 ReleaseCertificate { get; }

    public string ReleaseKeyFile { get; }

    public CmsRecipient ReleaseRecipient { get; }

    public X509Certificate2 MilterClient { get; }

    public int Port { get; }

    public Uri Url { get; }

    public string ConfigFile { get; }

    public string TlsCertificateFile => Path.Combine(Root, "tls.pem");

    public string ReleaseCertificateFile => Path.Combine(Root, "release.pem");

    /// <summary>Adds sections to keyd.ini before <see cref="StartAsync"/>.</summary>
    public void AppendConfig(string text) => File.AppendAllText(ConfigFile, "\n" + text + "\n");

    /// <summary>Adds a <c>KEY = VALUE</c> line to keyd.ini's [KeyServer] section before <see cref="StartAsync"/>.</summary>
    public void SetKeyServer(string line) =>
        File.WriteAllText(ConfigFile, File.ReadAllText(ConfigFile).Replace("[KeyServer]\n", $"[KeyServer]\n{line}\n", StringComparison.Ordinal));

    /// <summary>Sets list options (KEY=VALUE) on the release list.</summary>
    public void SetListOptions(params string[] options) => Admin.SetList(List, null, null, null, options);

    /// <summary>A member's release request as the reader sends it; null when the key server refuses.</summary>
    public async Task<ReleaseHttpResponse?> AskAsync(byte[] signed)
    {
        using KeyReleaseClient http = ReaderHttp();
        return await http.ReleaseAsync(Url, signed, CancellationToken.None);
    }

    /// <summary>A release request posted as raw JSON: the HTTP status and body exactly as the key server sent them.</summary>
    public async Task<(System.Net.HttpStatusCode Status, string Body)> RawReleaseAsync(byte[] signed)
    {
        using var raw = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && c.GetRawCertData().AsSpan().SequenceEqual(TlsCertificate.RawData) },
        });
        using HttpResponseMessage r = await raw.PostAsync(new Uri(Url, "v1/release"),
            new StringContent($"{{\"request\":\"{Convert.ToBase64String(signed)}\"}}", System.Text.Encoding.UTF8, "application/json"));
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    /// <summary>The member asks for <paramref name="entry"/>'s key with a correct request.</summary>
    public Task<ReleaseHttpResponse?> FetchAsync(KeyReleaseEntry entry, TestMember member) =>
        AskAsync(SignedRequest(entry, member.Address, member.Certificate, member.Key));

    /// <summary>SQLite only: the database file and its write-ahead log as they are on disk now.</summary>
    public byte[] RawDatabaseFiles()
    {
        using var all = new MemoryStream();
        foreach (string file in new[] { DirectoryOptions.Path, DirectoryOptions.Path + "-wal" })
        {
            if (File.Exists(file))
            {
                using var s = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                s.CopyTo(all);
            }
        }

        return all.ToArray();
    }

    public KeyServerHost? Host { get; private set; }

    public async Task<KeyServerHost> StartAsync()
    {
        KeyServerHost host = KeyServerHost.Build(KeyServerConfiguration.Load(ConfigFile));
        await host.StartAsync();
        Host = host;
        return host;
    }

    public async Task StopAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
            Host = null;
        }
    }

    /// <summary>A member with a fresh key pair, added to the list.</summary>
    public TestMember AddMember(string address, bool addToList = true)
    {
        var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={address}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature, true));
        using X509Certificate2 made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        X509Certificate2 cert = X509CertificateLoader.LoadCertificate(made.RawData);
        string name = address.Replace('@', '_');
        string certFile = Path.Combine(Root, name + ".pem");
        string keyFile = Path.Combine(Root, name + ".key");
        File.WriteAllText(certFile, cert.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (addToList)
        {
            Admin.AddMember(List, address, [certFile], useOaep: false, allowMismatch: false);
        }

        var member = new TestMember(address, cert, key, certFile, keyFile);
        _members[address] = member;
        return member;
    }

    public TestMember Member(string address) => _members[address];

    /// <summary>The list's key pair as the milter holds it.</summary>
    public IReadOnlyList<ListKey> ListKeys() =>
        [.. new ListDirectory(Store, KeyStore, TimeProvider.System).GetListKeys(List).Select(p => new ListKey(p.Certificate, p.PrivateKey, ownsKey: false))];

    public X509Certificate2 ListCertificate => Admin.GetCurrentCertificate(List);

    /// <summary>A post encrypted by openssl (the sender's independent S/MIME implementation) to the list certificate: DER ContentInfo.</summary>
    public async Task<byte[]> OpensslPostAsync(string plaintext)
    {
        string input = Path.Combine(Root, $"post-{Guid.NewGuid():N}.txt");
        string output = input + ".der";
        string listPem = Path.Combine(Root, "list.pem");
        File.WriteAllText(listPem, ListCertificate.ExportCertificatePem());
        File.WriteAllText(input, plaintext);
        (int code, _, string err) = await ExternalTool.RunAsync("openssl", ["cms", "-encrypt", "-aes-256-cbc", "-binary", "-in", input, "-outform", "DER", "-out", output, listPem]);
        Assert.True(code == 0, err);
        return File.ReadAllBytes(output);
    }

    /// <summary>openssl decrypts <paramref name="contentInfo"/> with the member's key; null when it cannot.</summary>
    public async Task<string?> OpensslDecryptAsync(byte[] contentInfo, TestMember member)
    {
        string input = Path.Combine(Root, $"readable-{Guid.NewGuid():N}.der");
        File.WriteAllBytes(input, contentInfo);
        (int code, string output, _) = await ExternalTool.RunAsync("openssl", ["cms", "-decrypt", "-binary", "-inform", "DER", "-in", input, "-recip", member.CertificateFile, "-inkey", member.KeyFile]);
        return code == 0 ? output : null;
    }

    private (X509Certificate2 Certificate, string KeyFile) WritePair(string name, (X509Certificate2 Certificate, RSA Key) pair)
    {
        File.WriteAllText(Path.Combine(Root, name + ".pem"), pair.Certificate.ExportCertificatePem());
        string keyFile = Path.Combine(Root, name + ".key");
        File.WriteAllText(keyFile, pair.Key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (pair.Certificate, keyFile);
    }

    private static (X509Certificate2, RSA) SelfSigned(string subject, bool tls)
    {
        var key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        if (tls)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            request.CertificateExtensions.Add(san.Build());
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, false));
        }
        else
        {
            // Key encipherment for deposits, digital signature for the receipts (docs/key-release.md §7).
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature, true));
        }

        using X509Certificate2 made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        return (X509CertificateLoader.LoadCertificate(made.RawData), key);
    }

    public KeyReleaseClient MilterHttp() => new([TlsCertificate], MilterClient, TimeSpan.FromSeconds(10));

    public KeyReleaseClient ReaderHttp() => new([TlsCertificate], null, TimeSpan.FromSeconds(10));

    /// <summary>What the milter does at end of message: seal and deposit. Returns the sealed post.</summary>
    public async Task<KeyReleaseSeal> SealAndDepositAsync(byte[] post, DateTimeOffset? notAfter = null, string sender = "alice@example.test")
    {
        var policy = new ReleasePolicy(List, ReleaseMode.Rekey, sender, notAfter ?? DateTimeOffset.UtcNow.AddDays(30));
        KeyReleaseSeal seal = KeyReleaseSealer.Seal(post, ListKeys(), ReleaseRecipient, Url.ToString(), policy, KeyReleaseEntry.NewMessageId());
        using KeyReleaseClient http = MilterHttp();
        await http.DepositAsync(Url, KeyReleaseDeposit.From(seal), CancellationToken.None);
        return seal;
    }

    /// <summary>A member's request as the reader makes it, with overridable parts for forgeries.</summary>
    public static byte[] SignedRequest(KeyReleaseEntry entry, string member, X509Certificate2 certificate, RSA key,
        byte[]? nonce = null, DateTimeOffset? time = null, byte[]? binding = null) =>
        new ReleaseRequest(entry.MessageId, member, nonce ?? RandomNumberGenerator.GetBytes(32), time ?? DateTimeOffset.UtcNow, binding ?? entry.Binding)
            .Sign(certificate, key);

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Store.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        System.IO.Directory.Delete(Root, recursive: true);
    }
}
