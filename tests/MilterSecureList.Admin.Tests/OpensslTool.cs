using System.Diagnostics;

namespace MilterSecureList.Admin.Tests;

/// <summary>openssl as the independent peer of the CLI tests: one runner for every test class.</summary>
internal static class OpensslTool
{
    /// <summary>Runs openssl; the test fails (with openssl's stderr) unless it exits 0.</summary>
    public static string Run(params string[] args)
    {
        (int code, string output, string error) = TryRun(args);
        Assert.True(code == 0, $"openssl {string.Join(' ', args)} failed: {error}");
        return output;
    }

    /// <summary>Runs openssl and returns its exit code, stdout and stderr (for expected failures).</summary>
    public static (int Code, string Output, string Error) TryRun(params string[] args)
    {
        var info = new ProcessStartInfo("openssl") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info) ?? throw new InvalidOperationException("openssl is missing (apt-get install openssl)");
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), "openssl did not finish");
        return (process.ExitCode, output, error.Result);
    }
}
