using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Gateway.Tests;

/// <summary>A person with a key pair (RSA, or ECDSA for EC parties) and certificate, written as PEM files openssl can use.</summary>
public sealed record Party(string Address, X509Certificate2 Certificate, AsymmetricAlgorithm Key, string CertFile, string KeyFile);

/// <summary>
/// A CA, a gateway user (alice@gw.example) in a SQLite directory, correspondents with their own keys (so openssl
/// can read what the gateway sends them and write what it receives), and the processor under test.
/// Keys are generated once per class (RSA generation dominates the time).
/// </summary>
public sealed class GatewayWorld : IDisposable
{
    public const string AuthservId = "gw.example";

    private static readonly Lazy<RSA> s_caKey = new(() => RSA.Create(2048));
    private static readonly Lazy<RSA[]> s_keys = new(() => [RSA.Create(2048), RSA.Create(2048), RSA.Create(2048), RSA.Create(2048)]);

    public GatewayWorld(GatewayOptions? options = null)
    {
        Temp = new TempDirectory();
        var caRequest = new CertificateRequest("CN=Gateway Test Root", s_caKey.Value, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        Ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddYears(5));
        CaFile = Temp.File("ca.pem");
        File.WriteAllText(CaFile, Ca.ExportCertificatePem() + "\n");

        Alice = Issue("alice@gw.example", s_keys.Value[0]);
        Bob = Issue("bob@partner.example", s_keys.Value[1]);
        Carol = Issue("carol@partner.example", s_keys.Value[2]);

        var keysOptions = new KeysOptions { Directory = Temp.File("keys") };
        Keys = new ListKeyStore(keysOptions);
        Store = GatewayStore.Open(new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = Temp.File("db/lists.db") }, TimeProvider.System);
        Administration = new GatewayAdministration(Store, Keys, TimeProvider.System);
        Administration.Import(Alice.Address, Alice.CertFile, Alice.KeyFile, null, false, null, null, null).Dispose();
        Directory = new StoreGatewayDirectory(Store, Keys);
        Anchors = TrustAnchors.Load(CaFile);
        Options = options ?? new GatewayOptions { AuthservId = AuthservId };
        Log = new ListLogger();
        Processor = new GatewayProcessor(Directory, Options, Anchors, TimeProvider.System, Log);
    }

    public TempDirectory Temp { get; }

    public X509Certificate2 Ca { get; }

    public string CaFile { get; }

    public Party Alice { get; }

    public Party Bob { get; }

    public Party Carol { get; }

    public ListKeyStore Keys { get; }

    public GatewayStore Store { get; }

    public GatewayAdministration Administration { get; }

    public StoreGatewayDirectory Directory { get; }

    public TrustAnchors Anchors { get; }

    public GatewayOptions Options { get; }

    public ListLogger Log { get; }

    public GatewayProcessor Processor { get; }

    /// <summary>A certificate for ADDRESS from the test CA (or self-signed when SELFSIGNED), with the given validity.
    /// KEY is RSA (keyEncipherment) or ECDSA (keyAgreement, or KEYUSAGE when given).</summary>
    public Party Issue(string address, AsymmetricAlgorithm key, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, bool selfSigned = false, string? fileStem = null,
        X509KeyUsageFlags? keyUsage = null)
    {
        CertificateRequest request = MilterSecureList.Testing.SmimeCertificateRequest.For(address, key, keyUsage);
        DateTimeOffset from = notBefore ?? DateTimeOffset.UtcNow.AddDays(-1);
        DateTimeOffset to = notAfter ?? DateTimeOffset.UtcNow.AddYears(1);
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        X509Certificate2 made;
        if (selfSigned)
        {
            made = request.CreateSelfSigned(from, to);
        }
        else
        {
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, true, false));
            using X509Certificate2 issued = request.Create(Ca.SubjectName, X509SignatureGenerator.CreateForRSA(s_caKey.Value, RSASignaturePadding.Pkcs1), from, to, serial);
            made = X509CertificateLoader.LoadCertificate(issued.RawData);
        }

        string stem = fileStem ?? $"{address}.{Guid.NewGuid():N}";
        string certFile = Temp.File(stem + ".pem");
        string keyFile = Temp.File(stem + ".key");
        File.WriteAllText(certFile, made.ExportCertificatePem() + "\n");
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new Party(address, made, key, certFile, keyFile);
    }

    /// <summary>
    /// The milter.ini of a daemon serving this world's directory and keys with [Milter] Handlers = HANDLERS;
    /// EXTRA is appended (more [Gateway] keys or whole sections).
    /// </summary>
    public string DaemonIni(string handlers, string extra = "") =>
        $"[Listener]\nSocket = {{SOCKET}}\nSocketMode = 0666\n[Milter]\nHandlers = {handlers}\n[Directory]\nPath = {Temp.File("db/lists.db")}\nCacheRefreshSeconds = 1\n" +
        $"[Keys]\nDirectory = {Temp.File("keys")}\n[Notices]\nEnabled = no\n[Gateway]\nAuthservId = {AuthservId}\nTrustAnchors = {CaFile}\n{extra}";

    /// <summary>Creates the encrypted list LIST (owner owner@gw.example) with MEMBERS, through the securelist CLI.</summary>
    public void CreateList(string list, params Party[] members)
    {
        string adminIni = Temp.File("admin.ini");
        File.WriteAllText(adminIni, $"[Directory]\nPath = {Temp.File("db/lists.db")}\n[Keys]\nDirectory = {Temp.File("keys")}\n");
        Admin("--config", adminIni, "list", "create", list, "--owner", "owner@gw.example");
        foreach (Party member in members)
        {
            Admin("--config", adminIni, "member", "add", list, member.Address, "--cert", member.CertFile);
        }
    }

    private static string Admin(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = MilterSecureList.Admin.AdminCli.Run(args, output, error);
        if (exit != 0)
        {
            throw new InvalidOperationException($"securelist {string.Join(' ', args)}: exit {exit}: {error}");
        }

        return output.ToString();
    }

    /// <summary>Runs <c>securelist ARGS --config</c> on this world's directory and keys (after <see cref="CreateList"/>); returns its output.</summary>
    public string AdminCli(params string[] args) => Admin([.. args, "--config", Temp.File("admin.ini")]);

    public static RSA FreshKey() => s_keys.Value[3];

    /// <summary>Imports PARTY's certificate as a manual, pinned correspondent certificate.</summary>
    public void Know(Party party) =>
        Administration.ImportCertificate(party.Address, party.CertFile, CertificateTrust.Manual, pin: true, allowMismatch: false, Anchors).Dispose();

    /// <summary>Runs one transaction through the processor: MAIL, every RCPT (replies returned), end of message.</summary>
    public (GatewayResult Result, byte[] Output, List<GatewayReply?> Replies) Run(string sender, string[] recipients, byte[] message, GatewayProcessor? processor = null)
    {
        processor ??= Processor;
        GatewayTransaction transaction = processor.Begin($"<{sender}>");
        var replies = recipients.Select(r => processor.CheckRecipient(transaction, $"<{r}>")).ToList();
        (List<GatewayHeader> headers, byte[] body) = SplitMessage(message);
        GatewayResult result = processor.Process(transaction, headers, body, "QID1");
        return (result, result.Apply(headers, MessageText.ToCrlf(body)), replies);
    }

    public static (List<GatewayHeader> Headers, byte[] Body) SplitMessage(byte[] message) => GatewayMessages.Split(message);

    public static byte[] PlainMessage(string from, string to, string text, string extraHeaders = "") => Encoding.UTF8.GetBytes(
        $"From: {from}\r\nTo: {to}\r\nSubject: gateway test\r\nMessage-ID: <{Guid.NewGuid():N}@test>\r\n{extraHeaders}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n");

    /// <summary>openssl decrypts MESSAGE with PARTY's key and verifies the signature inside against the test CA; returns the signed text.</summary>
    public string DecryptAndVerify(byte[] message, Party party)
    {
        string decrypted = Temp.File($"{Guid.NewGuid():N}.dec.eml");
        OpensslTool.Run("cms", "-decrypt", "-in", Write(message), "-recip", party.CertFile, "-inkey", party.KeyFile, "-out", decrypted);
        string content = Temp.File($"{Guid.NewGuid():N}.content.txt");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-verify", "-in", decrypted, "-CAfile", CaFile, "-out", content);
        return code == 0 ? File.ReadAllText(content) : throw new InvalidOperationException($"openssl cms -verify for {party.Address}: {error}");
    }

    /// <summary>Writes BYTES to a new temp file and returns its path.</summary>
    public string Write(byte[] bytes, string name = "msg.eml")
    {
        string path = Temp.File($"{Guid.NewGuid():N}.{name}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>openssl's output as a message: the given outer headers in front of openssl's MIME entity.</summary>
    public byte[] OpensslMessage(string outerHeaders, params string[] args)
    {
        string output = Temp.File($"{Guid.NewGuid():N}.out");
        OpensslTool.Run([args[0], "-out", output, .. args[1..]]);
        return [.. Encoding.ASCII.GetBytes(outerHeaders), .. File.ReadAllBytes(output)];
    }

    public void Dispose()
    {
        Directory.Dispose();
        Store.Dispose();
        Anchors.Dispose();
        Temp.Dispose();
    }
}

/// <summary>Collects formatted log lines, so tests can check the audit trail and that no secret is ever logged.</summary>
public sealed class ListLogger : ILogger
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => NullScope.Instance;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add(formatter(state, exception));
        }
    }

    private sealed class NullScope : IDisposable
    {
        public static NullScope Instance { get; } = new();

        public void Dispose()
        {
        }
    }
}
