using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Testing;

/// <summary>
/// The key server's three key pairs for a test (TLS for 127.0.0.1, the release pair, the milter's client certificate),
/// written as PEM files into a directory (keys 0600), and the INI lines that use them.
/// </summary>
public sealed class KeyServerFiles
{
    public KeyServerFiles(string dir)
    {
        Dir = dir;
        TlsCertificate = Write("keyd-tls", "CN=127.0.0.1", tls: true);
        ReleaseCertificate = Write("keyd-release", "CN=securelist-keyd release", tls: false);
        string clientPem = Write("milter-client", "CN=securelist-milter", tls: true);
        using X509Certificate2 client = X509CertificateLoader.LoadCertificateFromFile(clientPem);
        ClientFingerprint = client.GetCertHashString(HashAlgorithmName.SHA256);
        Port = ExternalTool.FreeTcpPort();
    }

    public string Dir { get; }

    public string TlsCertificate { get; }

    public string TlsKey => Path.Combine(Dir, "keyd-tls.key");

    public string ReleaseCertificate { get; }

    public string ReleaseKey => Path.Combine(Dir, "keyd-release.key");

    public string ClientCertificate => Path.Combine(Dir, "milter-client.pem");

    public string ClientKey => Path.Combine(Dir, "milter-client.key");

    public string ClientFingerprint { get; }

    public int Port { get; }

    public string Url => $"https://127.0.0.1:{Port}/";

    /// <summary>keyd.ini for these files and the given [Directory] lines.</summary>
    public string KeydIni(string directorySection) => $"""
        [KeyServer]
        Listen = 127.0.0.1:{Port}
        TlsCertificate = {TlsCertificate}
        TlsKey = {TlsKey}
        ReleaseCertificate = {ReleaseCertificate}
        ReleaseKey = {ReleaseKey}
        DepositClients = {ClientFingerprint}
        RateLimit = 10000
        [Directory]
        {directorySection}
        CacheRefreshSeconds = 1

        """;

    /// <summary>The [KeyRelease] section of milter.ini for these files.</summary>
    public string MilterSection => $"""

        [KeyRelease]
        Url = {Url}
        ReleaseCertificate = {ReleaseCertificate}
        TrustedCertificate = {TlsCertificate}
        ClientCertificate = {ClientCertificate}
        ClientKey = {ClientKey}
        Timeout = 10s

        """;

    private string Write(string name, string subject, bool tls)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        if (tls)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
            request.CertificateExtensions.Add(san.Build());
        }

        // Both pairs: keyEncipherment (TLS key exchange; deposits are wrapped to the release certificate) and
        // digitalSignature (TLS; receipts), as keyd checks at start-up (docs/key-release.md §6).
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        using X509Certificate2 cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        string pem = Path.Combine(Dir, name + ".pem");
        File.WriteAllText(pem, cert.ExportCertificatePem() + "\n");
        string keyFile = Path.Combine(Dir, name + ".key");
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return pem;
    }
}

/// <summary>The built securelist-keyd run as a child process; <see cref="KillAsync"/> is SIGKILL (no clean shutdown).</summary>
public sealed class KeyServerProcess : IAsyncDisposable
{
    private readonly BackgroundProcess _process;

    private KeyServerProcess(BackgroundProcess process) => _process = process;

    public string Output => _process.Output;

    public static string Dll()
    {
        string root = DaemonProcess.RepositoryRoot();
        string[] candidates = [.. new[] { "Release", "Debug" }
            .Select(c => Path.Combine(root, "src", "MilterSecureList.KeyServer", "bin", c, "net10.0", "securelist-keyd.dll"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)];
        return candidates.Length > 0 ? candidates[0] : throw new InvalidOperationException("securelist-keyd.dll not built (dotnet build src/MilterSecureList.KeyServer)");
    }

    /// <summary>The key server's process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Starts it with <paramref name="configFile"/> and waits (bounded) until the TLS port accepts connections.
    /// With <paramref name="runAs"/> (needs root) it runs as that user and group, as under systemd.</summary>
    public static async Task<KeyServerProcess> StartAsync(string configFile, int port, (string User, string Group)? runAs = null)
    {
        string[] command = ["dotnet", Dll(), "--config", configFile];
        var options = ToolOptions.Default;
        if (runAs is (string user, string group))
        {
            ExternalTool.RequireRoot($"starting the key server as user {user}");
            command = ["setpriv", $"--reuid={user}", $"--regid={group}", "--clear-groups", .. command];
            // root's HOME is not the user's to read
            options = new ToolOptions { Environment = new Dictionary<string, string> { ["HOME"] = Path.GetDirectoryName(configFile)! } };
        }

        var keyd = new KeyServerProcess(ExternalTool.Start(command[0], command[1..], options));
        try
        {
            await Poll.UntilAsync(
                async () => keyd._process.HasExited || await ExternalTool.AcceptsTcpAsync(port).ConfigureAwait(false),
                $"securelist-keyd to listen on 127.0.0.1:{port}",
                TimeSpan.FromSeconds(60),
                TimeSpan.FromMilliseconds(100),
                () => keyd.Output).ConfigureAwait(false);
            return keyd._process.HasExited
                ? throw new InvalidOperationException($"securelist-keyd exited with {keyd._process.ExitCode}: {keyd.Output}")
                : keyd;
        }
        catch
        {
            await keyd.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>SIGKILL and wait for the exit: what a crash or the OOM killer does.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            ExternalTool.Signal(_process.Id, "KILL");
            await _process.WaitForExitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync().ConfigureAwait(false);
        await _process.DisposeAsync().ConfigureAwait(false);
    }
}
