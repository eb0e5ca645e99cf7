using System.Diagnostics;
using System.Text;

namespace MilterSecureList.Cms.Tests.Infrastructure;

/// <summary>Runs a real peer (openssl, gpgsm, cmsutil, ...) with a time limit. A missing tool fails the test with
/// a clear message (the test script installs them); it is never silently skipped.</summary>
public static class Tool
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr);

    public static Result Run(string exe, IEnumerable<string> args, string? stdin = null, IDictionary<string, string>? env = null,
        string? workDir = null, int timeoutSeconds = 60)
    {
        string? path = Find(exe);
        Assert.True(path is not null, $"required tool '{exe}' is not installed (apt-get install openssl gpgsm libnss3-tools)");
        var psi = new ProcessStartInfo(path!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Path.GetTempPath(),
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        if (env is not null)
        {
            foreach ((string k, string v) in env)
            {
                psi.Environment[k] = v;
            }
        }

        using var p = Process.Start(psi)!;
        Task<string> so = p.StandardOutput.ReadToEndAsync();
        Task<string> se = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{exe} {string.Join(' ', args)} did not finish within {timeoutSeconds}s");
        }

        p.WaitForExit();
        return new Result(p.ExitCode, so.Result, se.Result);
    }

    public static Result MustRun(string exe, params string[] args) => MustRunEnv(exe, null, args);

    public static Result MustRunEnv(string exe, IDictionary<string, string>? env, params string[] args)
    {
        Result r = Run(exe, args, env: env);
        Assert.True(r.ExitCode == 0, $"{exe} {string.Join(' ', args)} failed ({r.ExitCode}): {r.StdErr}{r.StdOut}");
        return r;
    }

    private static string? Find(string exe)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            string candidate = Path.Combine(dir, exe);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
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
