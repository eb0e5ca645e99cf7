using System.Diagnostics;

namespace MilterSecureList.Testing;

/// <summary>Runs external programs for fixtures; a missing tool fails with a clear message (never a silent skip).</summary>
public static class ExternalTool
{
    /// <summary>Full path of a tool, searched in PATH plus /usr/sbin and /usr/lib/postfix/sbin; throws if absent.</summary>
    public static string Require(string name, string debianPackage)
    {
        string? path = Find(name);
        return path ?? throw new InvalidOperationException($"required tool '{name}' is not installed (apt-get install -y {debianPackage})");
    }

    public static string? Find(string name)
    {
        IEnumerable<string> dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/lib/postfix/sbin"]);
        return dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
    }

    public static void RequireRoot(string why)
    {
        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException($"{why} needs root (run the tests as root, e.g. sudo ./test.sh)");
        }
    }

    /// <summary>Runs a program to completion (bounded by <paramref name="timeout"/>) and returns exit code and output.</summary>
    public static async Task<(int ExitCode, string StdOut, string StdErr)> RunAsync(string file, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
            p.StandardInput.Close();
        }

        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }

        return (p.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
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

    /// <summary>Sends a signal to a process we started (kill(1); .NET has no SIGTERM API).</summary>
    public static void Signal(int pid, string signal)
    {
        using Process? p = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false });
        p?.WaitForExit();
    }
}
