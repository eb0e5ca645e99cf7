using System.Text;
using MilterSecureList.Testing;

namespace MilterSecureList.Cms.Tests.Infrastructure;

/// <summary>Runs a real peer (openssl, gpgsm, cmsutil, ...) through the shared runner. A missing tool fails the test with a
/// clear message (the test script installs them); it is never silently skipped.</summary>
public static class Tool
{
    public static ToolResult Run(string exe, IEnumerable<string> args, string? stdin = null, IReadOnlyDictionary<string, string>? env = null,
        string? workDir = null, int timeoutSeconds = 60) =>
        ExternalTool.Run(exe, args, new ToolOptions
        {
            Stdin = stdin is null ? null : Encoding.UTF8.GetBytes(stdin),
            Environment = env,
            WorkingDirectory = workDir ?? Path.GetTempPath(),
            Timeout = TimeSpan.FromSeconds(timeoutSeconds),
        });

    public static ToolResult MustRun(string exe, params string[] args) => MustRunEnv(exe, null, args);

    public static ToolResult MustRunEnv(string exe, IReadOnlyDictionary<string, string>? env, params string[] args) => Run(exe, args, env: env).EnsureSuccess();
}

/// <summary>A temp directory removed at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "msl-cms-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public static class Plaintexts
{
    /// <summary>A canonical (CRLF) MIME entity, as S/MIME encrypts.</summary>
    public static byte[] MimeEntity(string marker = "hello list") => Encoding.ASCII.GetBytes(
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + marker + "\r\nSecond line: " + new string('x', 300) + "\r\n");
}
