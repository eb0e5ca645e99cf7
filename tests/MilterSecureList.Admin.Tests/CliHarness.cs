using MilterSecureList.Directory.Tests.Fixtures;
using MilterSecureList.Testing;

namespace MilterSecureList.Admin.Tests;

public sealed record CliResult(int ExitCode, string Output, string Error)
{
    /// <summary>A user error: exit 2 and exactly one line on stderr, never a stack trace.</summary>
    public void AssertUserError(string expectedFragment)
    {
        Assert.True(ExitCode == 2, $"expected exit 2, got {ExitCode}; stderr: {Error}; stdout: {Output}");
        AssertOneLine(expectedFragment);
    }

    public void AssertOneLine(string expectedFragment)
    {
        string[] lines = Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line, got: {Error}");
        Assert.StartsWith("securelist: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expectedFragment, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", Error, StringComparison.Ordinal);
    }

    public CliResult AssertOk()
    {
        Assert.True(ExitCode == 0, $"exit {ExitCode}; stderr: {Error}; stdout: {Output}");
        return this;
    }
}

/// <summary>A directory on one back end plus a milter.ini naming it; runs the CLI in-process or as the built binary.</summary>
public sealed class CliHarness : IDisposable
{
    public CliHarness(BackendFixture fixture, string backend)
    {
        Temp = new TempDirectory();
        Options = fixture.NewDirectory(backend, Temp.Path);
        KeysDirectory = Temp.File("keys");
        ConfigFile = Temp.File("milter.ini");
        string directorySection = Options.Provider == Directory.DirectoryProvider.Postgres
            ? $"Provider = postgres\nConnectionString = {Options.ConnectionString}\n"
            : $"Provider = sqlite\nPath = {Options.Path}\n";
        File.WriteAllText(ConfigFile, $"; test configuration\n[Directory]\n{directorySection}CacheRefreshSeconds = 1\n\n[Keys]\nDirectory = {KeysDirectory}\n");
    }

    public TempDirectory Temp { get; }

    public Directory.DirectoryOptions Options { get; }

    public string KeysDirectory { get; }

    public string ConfigFile { get; }

    /// <summary>In-process: AdminCli with captured output. --config is appended after the verb.</summary>
    public CliResult Run(params string[] args) => RunRaw([.. args, "--config", ConfigFile]);

    public static CliResult RunRaw(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = AdminCli.Run(args, output, error);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>The real built <c>securelist</c> executable, as an operator runs it.</summary>
    public CliResult RunBinary(params string[] args)
    {
        string binary = Path.Combine(AppContext.BaseDirectory, "securelist");
        Assert.True(File.Exists(binary), $"built CLI not found at {binary}");
        (int code, string output, string error) = ExternalTool.Run(binary, [.. args, "--config", ConfigFile]);
        return new CliResult(code, output, error);
    }

    public string MemberCert(string address, int bits = 2048, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, string? fileName = null)
    {
        using var cert = TestCertificates.Rsa(address, bits, notBefore, notAfter);
        return TestCertificates.WritePem(cert, Temp.File(fileName ?? $"{Guid.NewGuid():N}.pem"));
    }

    public void Dispose() => Temp.Dispose();
}
