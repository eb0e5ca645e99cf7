using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests.Infrastructure;

/// <summary>External programs as a user would run them; a failing step fails the test with the tool's own words.</summary>
public static class Tool
{
    public static async Task<(int ExitCode, string StdOut, string StdErr)> RunAsync(string name, string package, IEnumerable<string> args, string? stdin = null, IDictionary<string, string>? env = null)
    {
        string path = ExternalTool.Require(name, package);
        if (env is null)
        {
            return await ExternalTool.RunAsync(path, args, TimeSpan.FromSeconds(120), stdin);
        }

        // ExternalTool has no environment parameter: go through env(1).
        return await ExternalTool.RunAsync("env", [.. env.Select(kv => $"{kv.Key}={kv.Value}"), path, .. args], TimeSpan.FromSeconds(120), stdin);
    }

    public static async Task<string> MustRunAsync(string name, string package, IEnumerable<string> args, string? stdin = null, IDictionary<string, string>? env = null)
    {
        string[] a = [.. args];
        (int rc, string o, string e) = await RunAsync(name, package, a, stdin, env);
        Assert.True(rc == 0, $"{name} {string.Join(' ', a)} exited {rc}: {e}{o}");
        return o;
    }

    public static Task<string> OpensslAsync(params string[] args) => MustRunAsync("openssl", "openssl", args);
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

    public static Task<(int ExitCode, string StdOut, string StdErr)> RunAsync(string config, params string[] args) =>
        ExternalTool.RunAsync("dotnet", [Binary(), "--config", config, .. args], TimeSpan.FromSeconds(120));

    public static async Task<string> MustRunAsync(string config, params string[] args)
    {
        (int rc, string o, string e) = await RunAsync(config, args);
        Assert.True(rc == 0, $"securelist {string.Join(' ', args)} exited {rc}: {e}{o}");
        return o;
    }
}
