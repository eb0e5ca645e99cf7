using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Configuration;
using MilterSecureList.Directory;
using MilterSecureList.KeyRelease;

namespace MilterSecureList.KeyServer;

/// <summary>keyd.ini (docs/key-release.md §6): [KeyServer], [Directory], [Metrics], [Logging], [Notices]. Every problem is one
/// line <c>FILE:LINE: [Section] Key: problem</c>; unknown sections and keys are refused.</summary>
public sealed class KeyServerConfiguration
{
    public const string DefaultPath = "/etc/securelist/keyd.ini";

    public required IPEndPoint Listen { get; init; }

    public required string TlsCertificate { get; init; }

    public required string TlsKey { get; init; }

    public required string ReleaseCertificate { get; init; }

    public required string ReleaseKey { get; init; }

    /// <summary>Upper-case hex SHA-256 fingerprints of the milter client certificates allowed to deposit.</summary>
    public required IReadOnlySet<string> DepositClients { get; init; }

    public required KeyReleaseServiceOptions Service { get; init; }

    public required DirectoryOptions Directory { get; init; }

    public IPEndPoint? MetricsListen { get; init; }

    public string LogLevel { get; init; } = "info";

    /// <summary>[KeyServer] SweepInterval: how often key material due under <c>release-delete</c> is forgotten.</summary>
    public TimeSpan SweepInterval { get; init; } = ReleaseSweeper.DefaultInterval;

    /// <summary>[Notices]: where receipts go (docs/key-release.md §7).</summary>
    public ReceiptOptions Notices { get; init; } = new();

    public static KeyServerConfiguration Load(string path)
    {
        IniFile ini = IniFile.Load(path);
        IniSection ks = ini.Section("KeyServer");
        IPEndPoint listen = Endpoint(ks, "Listen", "127.0.0.1:8443");
        string tlsCert = ExistingFile(ks, "TlsCertificate");
        string tlsKey = PrivateFile(ks, "TlsKey");
        string releaseCert = ExistingFile(ks, "ReleaseCertificate");
        string releaseKey = PrivateFile(ks, "ReleaseKey");
        var clients = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (string f in (ks.Value("DepositClients") ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string hex = f.Replace(":", "", StringComparison.Ordinal).ToUpperInvariant();
            if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            {
                throw ks.Error("DepositClients", $"'{f}' is not a SHA-256 fingerprint (64 hex digits)");
            }

            clients.Add(hex);
        }

        var service = new KeyReleaseServiceOptions
        {
            ReplayWindow = ks.GetDuration("ReplayWindow", TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30), TimeSpan.FromHours(1)),
            RateLimitPerMinute = ks.GetInt("RateLimit", 60, 1, 1_000_000),
        };
        TimeSpan sweep = ks.GetDuration("SweepInterval", ReleaseSweeper.DefaultInterval, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));
        ks.RejectUnknownKeys();

        IniSection dir = ini.Section(DirectoryOptions.SectionName);
        var problems = new List<string>();
        DirectoryOptions directory = DirectoryOptions.Bind(dir.Value, problems);
        problems.AddRange(directory.Validate());
        dir.ThrowFirst(problems);
        dir.RejectUnknownKeys();

        IniSection metrics = ini.Section("Metrics");
        IPEndPoint? metricsListen = metrics.Value("Listen") is null ? null : Endpoint(metrics, "Listen", "");
        metrics.RejectUnknownKeys();

        IniSection logging = ini.Section("Logging");
        string level = logging.GetChoice("Level", "info", "trace", "debug", "info", "warn", "error");
        logging.RejectUnknownKeys();
        IniSection notices = ini.Section("Notices");
        ReceiptOptions receipts = new()
        {
            Enabled = notices.GetChoice("Enabled", "yes", "yes", "no") == "yes",
            SmtpServer = notices.GetString("SmtpServer", "127.0.0.1:25"),
            From = notices.GetString("From", "securelist-keyd@localhost"),
        };
        if (!HostPort.TryParse(receipts.SmtpServer, out _, out _))
        {
            throw notices.Error("SmtpServer", $"'{receipts.SmtpServer}' is not HOST:PORT (e.g. 127.0.0.1:25)");
        }

        if (!MimeKit.MailboxAddress.TryParse(receipts.From, out _))
        {
            throw notices.Error("From", $"'{receipts.From}' is not a mail address");
        }

        notices.RejectUnknownKeys();
        ini.RejectUnknownSections(["KeyServer", DirectoryOptions.SectionName, "Metrics", "Logging", "Notices"]);

        // The two key pairs must load now: a wrong pair stops start-up with one line, not the first request.
        try
        {
            using X509Certificate2 tls = LoadPair(tlsCert, tlsKey);
        }
        catch (Exception e) when (e is CryptographicException or DirectoryException or ArgumentException)
        {
            throw ks.Error("TlsKey", $"cannot load the TLS certificate and key: {e.Message}");
        }

        if (ReleaseCertificateProblem(releaseCert) is { } problem)
        {
            throw ks.Error("ReleaseCertificate", problem);
        }

        try
        {
            using Cms.ListKey release = LoadReleaseKey(releaseCert, releaseKey);
        }
        catch (Exception e) when (e is CryptographicException or DirectoryException or ArgumentException or Cms.CmsRewrapException)
        {
            throw ks.Error("ReleaseKey", $"cannot load the release certificate and key: {e.Message}");
        }

        return new KeyServerConfiguration
        {
            Listen = listen,
            TlsCertificate = tlsCert,
            TlsKey = tlsKey,
            ReleaseCertificate = releaseCert,
            ReleaseKey = releaseKey,
            DepositClients = clients,
            Service = service,
            Directory = directory,
            MetricsListen = metricsListen,
            LogLevel = level,
            Notices = receipts,
            SweepInterval = sweep,
        };
    }

    /// <summary>
    /// What the release certificate must allow when it has a keyUsage extension (RFC 5280 §4.2.1.3): the deposits are
    /// wrapped to it (keyEncipherment for RSA key transport, keyAgreement for EC, RFC 5753 §3) and it signs receipts
    /// (digitalSignature, docs/key-release.md §7). Null when it is fit; a certificate without the extension allows all.
    /// </summary>
    public static string? ReleaseCertificateProblem(string certificatePath)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = CertificateInspector.LoadFile(certificatePath);
        }
        catch (Exception e) when (e is CryptographicException or DirectoryException)
        {
            return $"cannot read '{certificatePath}': {e.Message.ReplaceLineEndings(" ")}";
        }

        using (certificate)
        {
            string algorithm = certificate.GetKeyAlgorithm();
            (X509KeyUsageFlags wrap, string wrapName) = algorithm switch
            {
                Cms.Oids.RsaEncryption => (X509KeyUsageFlags.KeyEncipherment, "keyEncipherment"),
                Cms.Oids.EcPublicKey => (X509KeyUsageFlags.KeyAgreement, "keyAgreement"),
                _ => (X509KeyUsageFlags.None, ""),
            };
            if (wrap == X509KeyUsageFlags.None)
            {
                return $"key type {algorithm} is not supported (RSA or EC)";
            }

            if (certificate.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault() is not { } extension)
            {
                return null;
            }

            X509KeyUsageFlags usage = extension.KeyUsages;
            var missing = new List<string>();
            if ((usage & wrap) == 0)
            {
                missing.Add(wrapName + " (deposits are wrapped to it)");
            }

            if ((usage & X509KeyUsageFlags.DigitalSignature) == 0)
            {
                missing.Add("digitalSignature (it signs receipts)");
            }

            return missing.Count == 0 ? null
                : $"its keyUsage ({usage}) lacks {string.Join(" and ", missing)}; issue it with keyUsage digitalSignature, {wrapName}";
        }
    }

    /// <summary>The TLS certificate with its private key (PEM files; the key file must not be readable by others).</summary>
    public static X509Certificate2 LoadPair(string certificatePath, string keyPath)
    {
        ListKeyStore.CheckPrivateFile(keyPath);
        return X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
    }

    public static Cms.ListKey LoadReleaseKey(string certificatePath, string keyPath)
    {
        ListKeyStore.CheckPrivateFile(keyPath);
        X509Certificate2 certificate = CertificateInspector.LoadFile(certificatePath);
        return new Cms.ListKey(certificate, ListKeyStore.LoadPrivateKey(keyPath, certificate, () => null));
    }

    private static IPEndPoint Endpoint(IniSection section, string key, string defaultValue)
    {
        string text = section.GetString(key, defaultValue);
        if (!IPEndPoint.TryParse(text, out IPEndPoint? endpoint) || endpoint.Port == 0)
        {
            throw section.Error(key, $"'{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:8443)");
        }

        return endpoint;
    }

    private static string ExistingFile(IniSection section, string key)
    {
        string path = section.Value(key) ?? throw section.Error(key, "is required");
        return File.Exists(path) ? path : throw section.Error(key, $"'{path}' does not exist");
    }

    private static string PrivateFile(IniSection section, string key)
    {
        string path = ExistingFile(section, key);
        try
        {
            ListKeyStore.CheckPrivateFile(path);
        }
        catch (DirectoryException e)
        {
            throw section.Error(key, e.Message);
        }

        return path;
    }
}
