using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests.Infrastructure;

/// <summary>External programs as a user would run them; a failing step fails the test with the tool's own words.</summary>
public static class Tool
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);

    public static Task<ToolResult> RunAsync(string name, IEnumerable<string> args, string? stdin = null, IReadOnlyDictionary<string, string>? env = null) =>
        ExternalTool.RunAsync(name, args, new ToolOptions { Timeout = s_timeout, Stdin = stdin is null ? null : System.Text.Encoding.UTF8.GetBytes(stdin), Environment = env });

    public static async Task<string> MustRunAsync(string name, IEnumerable<string> args, string? stdin = null, IReadOnlyDictionary<string, string>? env = null) =>
        (await RunAsync(name, args, stdin, env)).EnsureSuccess().StdOut;

    public static Task<string> OpensslAsync(params string[] args) => MustRunAsync("openssl", args);
}

/// <summary>The securelist CLI binary (src/MilterSecureList.Admin/bin/CFG/net10.0), run as an operator runs it.</summary>
public static class SecureListCli
{
    public static string Binary()
    {
        string root = DaemonProcess.RepositoryRoot();
        string[] candidates = [.. new[] { "Release", "Debug" }
            .Select(c => Path.Combine(root, "src", "MilterSecureList.Admin", "bin", c, "net10.0", "securelist.dll"))
            .Where(File.Exists)
            .OrderByDescending(File.GetLastWriteTimeUtc)];
        return candidates.Length > 0 ? candidates[0] : throw new InvalidOperationException("securelist not built (dotnet build src/MilterSecureList.Admin)");
    }

    public static Task<ToolResult> RunAsync(string config, params string[] args) =>
        ExternalTool.RunAsync("dotnet", [Binary(), "--config", config, .. args], TimeSpan.FromSeconds(120));

    public static async Task<string> MustRunAsync(string config, params string[] args) => (await RunAsync(config, args)).EnsureSuccess().StdOut;
}
