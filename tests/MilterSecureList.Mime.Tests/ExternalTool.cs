using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace MilterSecureList.Mime.Tests;

/// <summary>Runs a real peer (openssl, gpgsm) with a time bound; a missing tool fails the test with a clear message.</summary>
internal static class ExternalTool
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    public static byte[] Run(string tool, string workingDirectory, byte[]? stdin, IDictionary<string, string>? environment, params string[] args)
    {
        var psi = new ProcessStartInfo(tool)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {tool}");
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"required tool '{tool}' is not installed (Debian: apt-get install -y openssl gpgsm): {ex.Message}", ex);
        }

        using (process)
        {
            var stdout = new MemoryStream();
            Task copyOut = process.StandardOutput.BaseStream.CopyToAsync(stdout);
            Task<string> copyErr = process.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                process.StandardInput.BaseStream.Write(stdin);
            }

            process.StandardInput.Close();
            if (!process.WaitForExit(s_timeout))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within {s_timeout.TotalSeconds} s");
            }

            Task.WaitAll(copyOut, copyErr);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed with exit code {process.ExitCode}: {copyErr.Result}");
            }

            return stdout.ToArray();
        }
    }

    public static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
