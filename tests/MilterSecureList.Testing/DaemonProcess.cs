namespace MilterSecureList.Testing;

/// <summary>
/// The built securelist-milter binary run as a child process with its own milter.ini in a temp directory.
/// Set SECURELIST_MILTER_DLL to test another build; otherwise the newest build in the repository is used.
/// </summary>
public sealed class DaemonProcess : IAsyncDisposable
{
    private readonly BackgroundProcess _process;
    private bool _terminated;

    private DaemonProcess(BackgroundProcess process, string directory, string socket)
    {
        _process = process;
        Directory = directory;
        Socket = socket;
    }

    /// <summary>The temp directory holding milter.ini (and the unix socket when asked for).</summary>
    public string Directory { get; }

    /// <summary>The listen address in Postfix syntax (inet:127.0.0.1:PORT or unix:/path).</summary>
    public string Socket { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>What the daemon wrote to stdout and stderr so far (its console log).</summary>
    public string Output => _process.Output;

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
    public static Task<ToolResult> RunToEndAsync(params string[] args) =>
        ExternalTool.RunAsync("dotnet", [DaemonDll(), .. args], TimeSpan.FromSeconds(60));

    /// <summary>
    /// Starts the daemon with the given INI sections; "{SOCKET}" in the text is replaced by the listen address
    /// (a unix socket in the temp directory when <paramref name="unix"/>, else a free TCP port).
    /// With <paramref name="runAs"/> (needs root) the daemon runs as that user and group, as under systemd.
    /// With <paramref name="wrapper"/> the daemon is started through that command (e.g. nohup).
    /// Waits until it accepts connections.
    /// </summary>
    public static async Task<DaemonProcess> StartAsync(string ini, bool unix = true, (string User, string Group)? runAs = null, string[]? wrapper = null)
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
        string[] command = ["dotnet", DaemonDll(), "--config", path];
        var options = ToolOptions.Default;
        if (runAs is (string user, string group))
        {
            ExternalTool.RequireRoot($"starting the daemon as user {user}");
            command = ["setpriv", $"--reuid={user}", $"--regid={group}", "--clear-groups", .. command];
            options = new ToolOptions { Environment = new Dictionary<string, string> { ["HOME"] = dir } }; // root's HOME is not the user's to read
        }

        if (wrapper is not null)
        {
            command = [.. wrapper, .. command];
        }

        var daemon = new DaemonProcess(ExternalTool.Start(command[0], command[1..], options), dir, socket);
        try
        {
            await Poll.UntilAsync(
                async () => daemon.HasExited || await AcceptsAsync(socket).ConfigureAwait(false),
                "securelist-milter to listen on " + socket,
                TimeSpan.FromSeconds(30),
                TimeSpan.FromMilliseconds(100),
                () => daemon.Output).ConfigureAwait(false);
            return daemon.HasExited
                ? throw new InvalidOperationException($"securelist-milter exited with {daemon._process.ExitCode}: {daemon.Output}")
                : daemon;
        }
        catch
        {
            await daemon.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A milter session as Postfix opens one: negotiated, CONNECT from a documentation address, HELO.</summary>
    public async Task<TestMta> OpenSessionAsync(string client = "client.example", string address = "192.0.2.1")
    {
        TestMta mta = await TestMta.ConnectAsync(Socket).ConfigureAwait(false);
        await mta.NegotiateAsync().ConfigureAwait(false);
        await mta.ConnectAsync(client, address).ConfigureAwait(false);
        await mta.HeloAsync(client).ConfigureAwait(false);
        return mta;
    }

    /// <summary>Waits (bounded) until the daemon's output contains <paramref name="text"/>; the log is written asynchronously.</summary>
    public Task WaitForOutputAsync(string text, TimeSpan? timeout = null) =>
        Poll.UntilAsync(() => Output.Contains(text, StringComparison.Ordinal), $"'{text}' in the daemon's output", timeout, evidence: () => Output);

    /// <summary>
    /// SIGHUP, then waits for the daemon's answer to it: the line saying it reloaded or refused the new file.
    /// Returns that line (lines from an earlier reload do not count).
    /// </summary>
    public Task<string> ReloadAsync()
    {
        int before = _process.Lines.Count;
        ExternalTool.Signal(ProcessId, "HUP");
        return Poll.ForAsync(
            () => _process.Lines.Skip(before).FirstOrDefault(l => l.Contains("reloaded ", StringComparison.Ordinal) || l.Contains("reload refused", StringComparison.Ordinal)),
            "the daemon's answer to SIGHUP",
            evidence: () => Output);
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
    public Task<int> StopAsync(TimeSpan? timeout = null)
    {
        Terminate();
        return _process.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(60));
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync().ConfigureAwait(false);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static async Task<bool> AcceptsAsync(string socket)
    {
        try
        {
            await using TestMta probe = await TestMta.ConnectAsync(socket).ConfigureAwait(false);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
