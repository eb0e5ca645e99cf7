using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace MilterSecureList.Testing;

/// <summary>How to run one external program: its input, environment, working directory and time bound.</summary>
public sealed record ToolOptions
{
    public static readonly ToolOptions Default = new();

    /// <summary>Upper bound for the whole run; on expiry the process tree is killed and the run fails.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Bytes written to standard input, which is then closed (null: standard input is closed at once).</summary>
    public byte[]? Stdin { get; init; }

    /// <summary>Variables added to (or replacing in) the inherited environment.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    public string? WorkingDirectory { get; init; }

    public static ToolOptions WithStdin(string text) => new() { Stdin = Encoding.UTF8.GetBytes(text) };
}

/// <summary>What one finished run of an external program left: exit code, both outputs, and the command line for messages.</summary>
public sealed record ToolResult(string CommandLine, int ExitCode, byte[] StdOutBytes, string StdErr)
{
    public string StdOut { get; } = Encoding.UTF8.GetString(StdOutBytes);

    public bool Succeeded => ExitCode == 0;

    /// <summary>Throws, naming the command line, exit code and both outputs, unless the program exited 0.</summary>
    public ToolResult EnsureSuccess() => ExitCode == 0
        ? this
        : throw new InvalidOperationException($"{CommandLine} exited {ExitCode}: {StdErr.Trim()}{(StdOut.Length > 0 ? " | stdout: " + StdOut.Trim() : string.Empty)}");

    /// <summary>For callers that keep the three values as a tuple.</summary>
    public static implicit operator (int ExitCode, string StdOut, string StdErr)(ToolResult result) => result.ToTuple();

    public (int ExitCode, string StdOut, string StdErr) ToTuple() => (ExitCode, StdOut, StdErr);

    public void Deconstruct(out int exitCode, out string stdOut, out string stdErr)
    {
        exitCode = ExitCode;
        stdOut = StdOut;
        stdErr = StdErr;
    }
}

/// <summary>
/// The one way tests run external programs (openssl, gpgsm, cmsutil, Postfix's commands, psql, miltertest, swaks,
/// the built binaries): bounded in time, outputs captured, the process tree killed on timeout, and a failure message
/// that names the command line and what the program wrote to stderr. A missing tool fails with the Debian package to
/// install (never a silent skip).
/// </summary>
public static class ExternalTool
{
    // The Debian package of each peer the tests use, for the "not installed" message.
    private static readonly Dictionary<string, string> s_packages = new(StringComparer.Ordinal)
    {
        ["openssl"] = "openssl",
        ["gpgsm"] = "gpgsm",
        ["gpgconf"] = "gpgconf",
        ["cmsutil"] = "libnss3-tools",
        ["certutil"] = "libnss3-tools",
        ["pk12util"] = "libnss3-tools",
        ["postfix"] = "postfix",
        ["postconf"] = "postfix",
        ["postqueue"] = "postfix",
        ["postsuper"] = "postfix",
        ["smtp-sink"] = "postfix",
        ["swaks"] = "swaks",
        ["miltertest"] = "miltertest",
        ["psql"] = "postgresql-client",
        ["runuser"] = "util-linux",
        ["setpriv"] = "util-linux",
        ["mount"] = "mount",
        ["umount"] = "mount",
        ["python3"] = "python3",
        ["dotnet"] = "dotnet-sdk-10.0",
    };

    /// <summary>Full path of a tool, searched in PATH plus /usr/sbin and /usr/lib/postfix/sbin; throws if absent.</summary>
    public static string Require(string name, string debianPackage) =>
        Find(name) ?? throw new InvalidOperationException($"required tool '{name}' is not installed (apt-get install -y {debianPackage})");

    public static string? Find(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(name) ? name : null;
        }

        IEnumerable<string> dirs = (System.Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/lib/postfix/sbin"]);
        return dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
    }

    public static void RequireRoot(string why)
    {
        if (System.Environment.UserName != "root")
        {
            throw new InvalidOperationException($"{why} needs root (run the tests as root, e.g. sudo ./test.sh)");
        }
    }

    /// <summary>Runs a program to completion; the exit code is the caller's to judge (see <see cref="ToolResult.EnsureSuccess"/>).</summary>
    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> args, ToolOptions options)
    {
        string[] argv = [.. args];
        using Process p = StartProcess(file, argv, options, options.Stdin is not null);
        string commandLine = CommandLine(file, argv);
        Task<byte[]> stdout = ReadAllAsync(p.StandardOutput.BaseStream);
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (options.Stdin is not null)
        {
            try
            {
                await p.StandardInput.BaseStream.WriteAsync(options.Stdin).ConfigureAwait(false);
                p.StandardInput.Close();
            }
            catch (IOException)
            {
                // The program exited without reading all its input; its exit code and stderr tell why.
            }
        }

        using var cts = new CancellationTokenSource(options.Timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync().ConfigureAwait(false);
            throw new TimeoutException($"{commandLine} did not finish within {options.Timeout.TotalSeconds:0.#} s; stderr: {(await stderr.ConfigureAwait(false)).Trim()}");
        }

        return new ToolResult(commandLine, p.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Runs a program to completion, with an optional time bound and text on standard input.</summary>
    public static Task<ToolResult> RunAsync(string file, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null) =>
        RunAsync(file, args, new ToolOptions
        {
            Timeout = timeout ?? ToolOptions.Default.Timeout,
            Stdin = stdin is null ? null : Encoding.UTF8.GetBytes(stdin),
        });

    /// <summary>The synchronous form of <see cref="RunAsync(string, IEnumerable{string}, ToolOptions)"/>, for synchronous tests.</summary>
    public static ToolResult Run(string file, IEnumerable<string> args, ToolOptions? options = null) =>
        RunAsync(file, args, options ?? ToolOptions.Default).GetAwaiter().GetResult();

    /// <summary>Runs a program that must succeed; returns its result (stdout in <see cref="ToolResult.StdOut"/>).</summary>
    public static ToolResult MustRun(string file, params string[] args) => Run(file, args).EnsureSuccess();

    /// <summary>Starts a long-running program (a server such as smtp-sink or the daemon) whose output is collected line by line.</summary>
    public static BackgroundProcess Start(string file, IEnumerable<string> args, ToolOptions? options = null)
    {
        string[] argv = [.. args];
        return new BackgroundProcess(StartProcess(file, argv, options ?? ToolOptions.Default, redirectStdin: false), CommandLine(file, argv));
    }

    /// <summary>A free TCP port on 127.0.0.1 (bound and released; good enough for tests).</summary>
    public static int FreeTcpPort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>Whether something accepts TCP connections on 127.0.0.1:<paramref name="port"/> now (a start-up probe for <see cref="Poll"/>).</summary>
    public static async Task<bool> AcceptsTcpAsync(int port)
    {
        try
        {
            using var probe = new System.Net.Sockets.TcpClient();
            await probe.ConnectAsync(System.Net.IPAddress.Loopback, port).ConfigureAwait(false);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// Sends a signal to a process we started (kill(1); .NET has no SIGTERM API). A process that has just exited is
    /// not an error: callers check what they expect of the process afterwards.
    /// </summary>
    public static void Signal(int pid, string signal) => Run("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);

    private static Process StartProcess(string file, string[] args, ToolOptions options, bool redirectStdin)
    {
        string path = Find(file) ?? throw new InvalidOperationException(
            $"required tool '{file}' is not installed (apt-get install -y {s_packages.GetValueOrDefault(Path.GetFileName(file), Path.GetFileName(file))})");
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (options.WorkingDirectory is not null)
        {
            psi.WorkingDirectory = options.WorkingDirectory;
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach ((string key, string value) in options.Environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        Process p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + CommandLine(file, args));
        if (!redirectStdin)
        {
            // Nothing to say: a program that reads its input sees end of file rather than waiting forever.
            p.StandardInput.Close();
        }

        return p;
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private static string CommandLine(string file, IEnumerable<string> args) =>
        string.Join(' ', args.Prepend(file).Select(a => a.Length == 0 || a.Any(char.IsWhiteSpace) ? $"'{a}'" : a));
}

/// <summary>
/// A long-running child process started by <see cref="ExternalTool.Start"/>: stdout and stderr are collected as lines,
/// and disposing kills the whole process tree (a server must not outlive its test).
/// </summary>
public sealed class BackgroundProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

    internal BackgroundProcess(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { _lines.Enqueue(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { _lines.Enqueue(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string CommandLine { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Lines written to stdout and stderr so far, in arrival order.</summary>
    public IReadOnlyList<string> Lines => [.. _lines];

    public string Output => string.Join('\n', _lines);

    /// <summary>Waits (bounded) for the process to exit and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{CommandLine} did not exit within {timeout.TotalSeconds:0.#} s; output: {Output}");
        }

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
    }
}
