using System.Collections.Concurrent;
using System.Diagnostics;

namespace MilterSecureList.Testing;

/// <summary>
/// The built securelist-milter binary run as a child process with its own milter.ini in a temp directory.
/// Set SECURELIST_MILTER_DLL to test another build; otherwise the newest build in the repository is used.
/// </summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private bool _terminated;

    private DaemonProcess(Process process, string directory, string socket)
    {
        _process = process;
        Directory = directory;
        Socket = socket;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { _output.Enqueue(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { _output.Enqueue(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The temp directory holding milter.ini (and the unix socket when asked for).</summary>
    public string Directory { get; }

    /// <summary>The listen address in Postfix syntax (inet:127.0.0.1:PORT or unix:/path).</summary>
    public string Socket { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Output => string.Join('\n', _output);

    public static string DaemonDll()
    {
        string? env = Environment.GetEnvironmentVariable("SECURELIST_MILTER_DLL");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }

        string root = RepositoryRoot();
        string[] candidates = [.. new[] { "Release", "Debug" }
            .Select(c => Path.Combine(root, "src", "MilterSecureList.Daemon", "bin", c, "net10.0", "securelist-milter.dll"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)];
        return candidates.Length > 0 ? candidates[0] : throw new InvalidOperationException("securelist-milter.dll not built (dotnet build src/MilterSecureList.Daemon)");
    }

    public static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "MilterSecureList.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (MilterSecureList.sln) above " + AppContext.BaseDirectory);
    }

    /// <summary>Runs the binary with arguments to completion (for --check-config, --version).</summary>
    public static Task<(int ExitCode, string StdOut, string StdErr)> RunToEndAsync(params string[] args) =>
        ExternalTool.RunAsync("dotnet", [DaemonDll(), .. args], TimeSpan.FromSeconds(60));

    /// <summary>
    /// Starts the daemon with the given INI sections; "{SOCKET}" in the text is replaced by the listen address
    /// (a unix socket in the temp directory when <paramref name="unix"/>, else a free TCP port).
    /// Waits until it accepts connections.
    /// </summary>
    public static async Task<DaemonProcess> StartAsync(string ini, bool unix = true)
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-daemon-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0x1ED); // 0755: Postfix (user postfix) must reach the socket
        string socket = unix ? "unix:" + Path.Combine(dir, "milter.sock") : "inet:127.0.0.1:" + ExternalTool.FreeTcpPort();
        string path = Path.Combine(dir, "milter.ini");
        string text = ini.Replace("{SOCKET}", socket, StringComparison.Ordinal);
        await File.WriteAllTextAsync(path, text).ConfigureAwait(false);

        // The INI may name its own socket instead of {SOCKET}: probe that one.
        string? configured = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Socket ", StringComparison.Ordinal) || l.StartsWith("Socket=", StringComparison.Ordinal));
        socket = configured is null ? socket : configured[(configured.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(DaemonDll());
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(path);
        Process p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start dotnet");
        var daemon = new DaemonProcess(p, dir, socket);
        for (int i = 0; i < 300; i++)
        {
            if (p.HasExited)
            {
                throw new InvalidOperationException($"securelist-milter exited with {p.ExitCode}: {daemon.Output}");
            }

            try
            {
                await using TestMta probe = await TestMta.ConnectAsync(socket).ConfigureAwait(false);
                return daemon;
            }
            catch (System.Net.Sockets.SocketException)
            {
                await Task.Delay(100).ConfigureAwait(false);
            }
        }

        await daemon.DisposeAsync().ConfigureAwait(false);
        throw new TimeoutException("securelist-milter did not start listening: " + daemon.Output);
    }

    /// <summary>Sends SIGTERM once (as systemd does); a second SIGTERM during shutdown would kill the process.</summary>
    public void Terminate()
    {
        if (!_terminated && !_process.HasExited)
        {
            _terminated = true;
            ExternalTool.Signal(_process.Id, "TERM");
        }
    }

    /// <summary>SIGTERM (unless already sent), then waits (bounded) for exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        Terminate();

        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
