using System.Net;
using System.Net.Sockets;
using System.Text;
using MilterSecureList.Cms.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.Cms.Tests;

/// <summary>
/// scripts/install-newer-readers.sh trusts nothing it downloads until it is verified: a mirror on loopback replays the
/// real trixie InRelease and Packages.xz the script kept in its cache, with one link of the chain tampered each time
/// (the signed release file, the package index, a .deb), and the script must refuse and leave no reader behind.
/// </summary>
public sealed class NewerReadersFetchTests : IDisposable
{
    private const string Index = "dists/trixie/main/binary-amd64/Packages.xz";
    private readonly TempDir _dir = new();
    private readonly Dictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private readonly TcpListener _mirror = new(IPAddress.Loopback, 0); // port 0: nothing else can hold it
    private readonly CancellationTokenSource _stop = new();

    public NewerReadersFetchTests()
    {
        _files["dists/trixie/InRelease"] = File.ReadAllBytes(NewerReaders.CachedFile("InRelease"));
        _files[Index] = File.ReadAllBytes(NewerReaders.CachedFile("Packages.xz"));
        _mirror.Start();
        _ = ServeAsync();
    }

    private int Port => ((IPEndPoint)_mirror.LocalEndpoint).Port;

    // Just enough HTTP/1.1 for curl: one GET per connection, the file or 404, then close.
    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _mirror.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return; // stopped
            }

            using (client)
            {
                NetworkStream stream = client.GetStream();
                var request = new StringBuilder();
                var buffer = new byte[4096];
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    int n = await stream.ReadAsync(buffer).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }

                string[] line = request.ToString().Split("\r\n")[0].Split(' ');
                string path = line.Length > 1 ? line[1].TrimStart('/') : "";
                byte[] body = _files.GetValueOrDefault(path) ?? [];
                string status = _files.ContainsKey(path) ? "200 OK" : "404 Not Found";
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n")).ConfigureAwait(false);
                await stream.WriteAsync(body).ConfigureAwait(false);
            }
        }
    }

    private (ToolResult Result, string Dest) RunScript()
    {
        string dest = _dir.File("readers");
        ToolResult r = ExternalTool.Run("bash", [Path.Combine(DaemonProcess.RepositoryRoot(), NewerReaders.InstallScript)], new ToolOptions
        {
            Environment = new Dictionary<string, string> { ["SECURELIST_READERS_DIR"] = dest, ["DEBIAN_MIRROR"] = $"http://127.0.0.1:{Port}" },
            Timeout = TimeSpan.FromSeconds(60),
        });
        return (r, dest);
    }

    private void AssertRefused(string expected)
    {
        (ToolResult r, string dest) = RunScript();
        Assert.True(r.ExitCode == 1, $"expected exit 1: {r.CommandLine} exited {r.ExitCode}: {r.StdErr}");
        Assert.Contains(expected, r.StdErr, StringComparison.Ordinal);
        Assert.False(System.IO.Directory.Exists(dest), "a refused fetch must leave no reader directory");
        Assert.Empty(System.IO.Directory.GetDirectories(_dir.Path)); // nor its work directory
    }

    [Fact]
    public void AReleaseFileChangedAfterSigningIsRefused()
    {
        // One hex digit of the signed Packages.xz hash changed: the signature no longer covers the text.
        string text = Encoding.UTF8.GetString(_files["dists/trixie/InRelease"]);
        int at = text.IndexOf(" main/binary-amd64/Packages.xz", StringComparison.Ordinal) - 30;
        char flipped = text[at] == '0' ? '1' : '0';
        _files["dists/trixie/InRelease"] = Encoding.UTF8.GetBytes(string.Concat(text.AsSpan(0, at), flipped.ToString(), text.AsSpan(at + 1)));
        AssertRefused("InRelease signature does not verify");
    }

    [Fact]
    public void AReleaseFileWithoutASignatureIsRefused()
    {
        string text = Encoding.UTF8.GetString(_files["dists/trixie/InRelease"]);
        int start = text.IndexOf("\n\n", StringComparison.Ordinal) + 2, end = text.IndexOf("-----BEGIN PGP SIGNATURE-----", StringComparison.Ordinal);
        _files["dists/trixie/InRelease"] = Encoding.UTF8.GetBytes(text[start..end]);
        AssertRefused("InRelease signature does not verify");
    }

    [Fact]
    public void AnIndexThatIsNotTheSignedOneIsRefused()
    {
        byte[] index = (byte[])_files[Index].Clone();
        index[index.Length / 2] ^= 0x01;
        _files[Index] = index;
        AssertRefused("Packages.xz does not match the SHA-256 in the signed release file");
    }

    [Fact]
    public void APackageThatIsNotTheIndexedOneIsRefused()
    {
        // The signed release file and the index are genuine; the first package (libnss3) is not what the index lists.
        string pool = "pool/main/n/nss/libnss3_" + NewerReaders.PackageVersion("libnss3").Split(':')[^1] + "_amd64.deb";
        _files[pool] = Encoding.ASCII.GetBytes("!<arch>\nnot the package the index names\n");
        AssertRefused(pool + " does not match the SHA-256 in the package index");
    }

    public void Dispose()
    {
        _stop.Cancel();
        _mirror.Stop();
        _stop.Dispose();
        _dir.Dispose();
    }
}
