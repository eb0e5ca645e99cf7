using MilterSecureList.Testing;

namespace MilterSecureList.Admin.Tests;

/// <summary>openssl as the independent peer of the CLI tests, through the shared runner.</summary>
internal static class OpensslTool
{
    /// <summary>Runs openssl; the test fails (with the command line and openssl's stderr) unless it exits 0.</summary>
    public static string Run(params string[] args) => ExternalTool.MustRun("openssl", args).StdOut;

    /// <summary>Runs openssl and returns its exit code, stdout and stderr (for expected failures).</summary>
    public static (int Code, string Output, string Error) TryRun(params string[] args) => ExternalTool.Run("openssl", args);
}
