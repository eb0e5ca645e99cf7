using System.Text;
using MilterSecureList.Testing;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// OpenDKIM (the Debian package opendkim) as a signing or verifying milter on a loopback port, with a fresh
/// 2048-bit key for DOMAIN and selector "sel"; its test mode (opendkim -t) verifies a message offline and
/// opendkim-testmsg signs one (TestPublicKeys stands in for DNS everywhere). Stopped by its process id.
/// </summary>
public sealed class OpenDkim : IAsyncDisposable
{
    private readonly BackgroundProcess _process;
    private readonly string _directory;

    private OpenDkim(BackgroundProcess process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Socket = $"inet:127.0.0.1:{port}";
    }

    /// <summary>The milter address in Postfix syntax.</summary>
    public string Socket { get; }

    /// <summary>The authserv-id of the verifier's Authentication-Results.</summary>
    public const string AuthservId = "dkim.gw.example";

    public static Task<OpenDkim> StartSigningAsync(string directory, string domain) => StartAsync(directory, domain, sign: true);

    public static Task<OpenDkim> StartVerifyingAsync(string directory, string domain) => StartAsync(directory, domain, sign: false);

    private static async Task<OpenDkim> StartAsync(string directory, string domain, bool sign)
    {
        string opendkim = ExternalTool.Require("opendkim", "opendkim");
        ExternalTool.Require("opendkim-genkey", "opendkim-tools");
        System.IO.Directory.CreateDirectory(directory);
        await MustRunAsync("opendkim-genkey", "-b", "2048", "-d", domain, "-s", "sel", "-D", directory);
        string key = Path.Combine(directory, "sel.private");
        (_, string publicKey, _) = await ExternalTool.RunAsync("sh", ["-c", $"openssl rsa -in '{key}' -pubout -outform DER 2>/dev/null | base64 -w0"]);
        await File.WriteAllTextAsync(Path.Combine(directory, "keys"), $"sel._domainkey.{domain} v=DKIM1; k=rsa; p={publicKey.Trim()}\n");
        await File.WriteAllTextAsync(Path.Combine(directory, "verify.conf"), $"Mode v\nSyslog no\nTestPublicKeys {Path.Combine(directory, "keys")}\n");

        int port = ExternalTool.FreeTcpPort();
        string conf = Path.Combine(directory, "sign.conf");
        // RequireSafeKeys false: the key lives in a test temp directory under /tmp, which others can write.
        string mode = sign
            ? $"Mode s\nDomain {domain}\nSelector sel\nKeyFile {key}\nInternalHosts 127.0.0.1\nRequireSafeKeys false\n"
            : $"Mode v\nTestPublicKeys {Path.Combine(directory, "keys")}\nAuthservID {AuthservId}\n";
        await File.WriteAllTextAsync(conf, $"{mode}Socket inet:{port}@127.0.0.1\nSyslog no\nBackground no\nCanonicalization relaxed/relaxed\n");
        var dkim = new OpenDkim(ExternalTool.Start(opendkim, ["-f", "-x", conf]), directory, port);
        try
        {
            await Poll.UntilAsync(
                async () => dkim._process.HasExited || await ExternalTool.AcceptsTcpAsync(port),
                $"opendkim to listen on 127.0.0.1:{port}",
                TimeSpan.FromSeconds(30),
                TimeSpan.FromMilliseconds(100),
                () => dkim._process.Output);
            return dkim._process.HasExited
                ? throw new InvalidOperationException($"opendkim exited with {dkim._process.ExitCode}: {dkim._process.Output}")
                : dkim;
        }
        catch
        {
            await dkim.DisposeAsync();
            throw;
        }
    }

    /// <summary>opendkim -t: the verdict line for MESSAGE (LF or CRLF), e.g. "... verification (s=sel, d=..., 2048-bit key) succeeded".</summary>
    public async Task<string> VerifyAsync(string message)
    {
        string file = Path.Combine(_directory, $"{Guid.NewGuid():N}.eml");
        await File.WriteAllTextAsync(file, message.ReplaceLineEndings("\r\n"), Encoding.Latin1);
        (int code, string output, string error) = await ExternalTool.RunAsync("opendkim", ["-x", Path.Combine(_directory, "verify.conf"), "-t", file]);
        return $"exit {code}: {output}{error}".Trim();
    }

    /// <summary>MESSAGE signed for the domain with this instance's key (opendkim-testmsg), CRLF line ends.</summary>
    public async Task<byte[]> SignAsync(byte[] message, string domain)
    {
        (int code, string output, string error) = await ExternalTool.RunAsync("opendkim-testmsg", ["-C", "-d", domain, "-k", Path.Combine(_directory, "sel.private"), "-s", "sel"],
            stdin: Encoding.Latin1.GetString(message).ReplaceLineEndings("\r\n"));
        return code == 0 ? Encoding.Latin1.GetBytes(output) : throw new InvalidOperationException("opendkim-testmsg: " + error);
    }

    public ValueTask DisposeAsync() => _process.DisposeAsync();

    private static async Task MustRunAsync(string tool, params string[] args)
    {
        (int code, _, string error) = await ExternalTool.RunAsync(tool, args);
        if (code != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)}: {error}");
        }
    }
}
