using System.Diagnostics;
using System.Net.Sockets;
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
    private readonly Process _process;
    private readonly string _directory;

    private OpenDkim(Process process, string directory, int port)
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
        var psi = new ProcessStartInfo(opendkim) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-f", "-x", conf })
        {
            psi.ArgumentList.Add(a);
        }

        Process process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start opendkim");
        var dkim = new OpenDkim(process, directory, port);
        for (int i = 0; i < 100; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                return dkim;
            }
            catch (SocketException)
            {
                if (process.HasExited)
                {
                    break;
                }

                await Task.Delay(100);
            }
        }

        string error = process.HasExited ? await process.StandardError.ReadToEndAsync() : "not listening";
        await dkim.DisposeAsync();
        throw new InvalidOperationException("opendkim did not start: " + error);
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

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static async Task MustRunAsync(string tool, params string[] args)
    {
        (int code, _, string error) = await ExternalTool.RunAsync(tool, args);
        if (code != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)}: {error}");
        }
    }
}
