using MilterSecureList.Testing;

namespace MilterSecureList.Daemon.Tests;

/// <summary>The built binary's command line: exit codes and the one-line error contract.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("msl-cli-").FullName;

    public void Dispose() => System.IO.Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task CheckConfigExitsZeroForAValidFile()
    {
        (int rc, string stdout, _) = await DaemonProcess.RunToEndAsync("--check-config", "--config", Path.Combine(DaemonProcess.RepositoryRoot(), "milter.ini.example"));
        Assert.Equal(0, rc);
        Assert.Contains("OK", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckConfigExitsOneWithOneLineNamingTheKey()
    {
        string path = Path.Combine(_dir, "milter.ini");
        await File.WriteAllTextAsync(path, "[Listener]\nMaxConnections = lots\n");
        (int rc, string stdout, string stderr) = await DaemonProcess.RunToEndAsync("--check-config", "--config", path);
        Assert.Equal(1, rc);
        Assert.Equal($"{path}:2: [Listener] MaxConnections: 'lots' is not a whole number from 1 to 1000000", stderr.Trim());
        Assert.Empty(stdout);
    }

    [Fact]
    public async Task StartWithABadValueStopsWithOneLineAndExitCodeOne()
    {
        string path = Path.Combine(_dir, "milter.ini");
        await File.WriteAllTextAsync(path, "[Milter]\nHandler = echo\nSpoolThreshold = huge\n");
        (int rc, _, string stderr) = await DaemonProcess.RunToEndAsync("--config", path);
        Assert.Equal(1, rc);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith($"{path}:3: [Milter] SpoolThreshold: ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", stderr, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public async Task ABusyPortIsOneLineInMilterWords()
    {
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        holder.Start();
        int port = ((System.Net.IPEndPoint)holder.LocalEndpoint).Port;
        string path = Path.Combine(_dir, "milter.ini");
        await File.WriteAllTextAsync(path, $"[Listener]\nSocket = inet:127.0.0.1:{port}\n[Milter]\nHandler = echo\n");
        (int rc, _, string stderr) = await DaemonProcess.RunToEndAsync("--config", path);
        Assert.Equal(1, rc);
        Assert.Equal($"securelist-milter: cannot start: cannot listen on [Listener] Socket = inet:127.0.0.1:{port}: address already in use", stderr.Trim());
    }

    [Fact]
    public async Task DuplicateKeyIsReportedWithFileLineSectionAndKey()
    {
        string path = Path.Combine(_dir, "milter.ini");
        await File.WriteAllTextAsync(path, "[Milter]\nHandler = echo\nHandler = lists\n");
        (int rc, _, string stderr) = await DaemonProcess.RunToEndAsync("--check-config", "--config", path);
        Assert.Equal(1, rc);
        Assert.Equal($"{path}:3: [Milter] Handler: set twice (first on line 2); keep one", stderr.Trim());
    }

    [Fact]
    public async Task MissingConfigFileIsAnError()
    {
        (int rc, _, string stderr) = await DaemonProcess.RunToEndAsync("--check-config", "--config", Path.Combine(_dir, "nope.ini"));
        Assert.Equal(1, rc);
        Assert.Contains("file not found", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VersionPrintsTheVersion()
    {
        (int rc, string stdout, _) = await DaemonProcess.RunToEndAsync("--version");
        Assert.Equal(0, rc);
        Assert.Matches(@"^securelist-milter \d+\.\d+\.\d+", stdout);
    }

    [Fact]
    public async Task UnknownArgumentIsAUsageError()
    {
        (int rc, _, string stderr) = await DaemonProcess.RunToEndAsync("--frobnicate");
        Assert.Equal(2, rc);
        Assert.Contains("usage:", stderr, StringComparison.Ordinal);
    }
}
