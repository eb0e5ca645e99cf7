using System.Text.RegularExpressions;
using MilterSecureList.Configuration;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Testing;

namespace MilterSecureList.Daemon.Tests;

public sealed class ConfigurationTests : IDisposable
{
    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("msl-config-").FullName;

    public void Dispose() => System.IO.Directory.Delete(_dir, recursive: true);

    private string Write(string text)
    {
        string path = Path.Combine(_dir, "milter.ini");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void TheExampleFileIsValidAndMatchesTheDefaults()
    {
        DaemonConfiguration c = DaemonConfiguration.Load(Path.Combine(DaemonProcess.RepositoryRoot(), "milter.ini.example"));
        Assert.Equal("inet:127.0.0.1:8891", c.Get<ListenerOptions>().Socket.ToString());
        Assert.Equal("lists", c.Get<MilterOptions>().Handler);
    }

    [Fact]
    public void EveryKeyOfTheExampleIsDocumentedWithItsDefault()
    {
        // Uncomment every ";Key = default" line: the result must load and give the built-in defaults.
        string example = File.ReadAllText(Path.Combine(DaemonProcess.RepositoryRoot(), "milter.ini.example"));
        string uncommented = string.Join('\n', example.Split('\n').Select(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^;[A-Z][A-Za-z]+ =") ? l[1..] : l));
        DaemonConfiguration c = DaemonConfiguration.Load(Write(uncommented));
        Assert.Equal(1000, c.Get<ListenerOptions>().MaxConnections);
        Assert.Equal(TimeSpan.FromSeconds(30), c.Get<ListenerOptions>().DrainTimeout);
        Assert.Equal((UnixFileMode)0x1B0, c.Get<ListenerOptions>().SocketMode);
        Assert.Equal(10, c.Get<MilterOptions>().EchoRecipients);
        Assert.Equal(2 * 1024 * 1024, c.Get<MilterOptions>().SpoolThreshold);
        Assert.Equal(16 * 1024 * 1024, c.Get<MilterOptions>().SpoolMemory);
        Assert.Equal(16 * 1024 * 1024, c.Get<MilterOptions>().KeyCacheMemory);
        Assert.Equal(50L * 1024 * 1024, c.Get<MilterOptions>().MaxMessageSize);
        Assert.Equal(256 * 1024, c.Get<MilterOptions>().MaxPacketSize);
        Assert.Equal("info", c.Get<LoggingOptions>().Level);
        foreach (string key in new[] { "Socket", "SocketMode", "SocketGroup", "MaxConnections", "DrainTimeout", "Handler", "EchoRecipients", "SpoolThreshold", "SpoolMemory", "KeyCacheMemory", "MaxMessageSize", "MaxPacketSize", "TempDirectory", "Level", "File" })
        {
            Assert.Contains($";{key} =", example, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ParsesSizesDurationsAndModes()
    {
        DaemonConfiguration c = DaemonConfiguration.Load(Write($"""
            [Listener]
            Socket = unix:{_dir}/m.sock
            SocketMode = 0600
            MaxConnections = 5
            DrainTimeout = 1500ms
            [Milter]
            Handler = ECHO
            SpoolThreshold = 64K
            KeyCacheMemory = 320M
            MaxMessageSize = 2M
            MaxPacketSize = 65535
            """));
        Assert.Equal($"{_dir}/m.sock", c.Get<ListenerOptions>().Socket.UnixPath);
        Assert.Equal((UnixFileMode)0x180, c.Get<ListenerOptions>().SocketMode);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), c.Get<ListenerOptions>().DrainTimeout);
        Assert.Equal("echo", c.Get<MilterOptions>().Handler);
        Assert.Equal(65536, c.Get<MilterOptions>().SpoolThreshold);
        Assert.Equal(320L * 1024 * 1024, c.Get<MilterOptions>().KeyCacheMemory);
        Assert.Equal(2 * 1024 * 1024, c.Get<MilterOptions>().MaxMessageSize);
    }

    [Theory]
    [InlineData("[Listener]\nSocket = tcp:1.2.3.4:5", "2: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = inet:127.0.0.1:0", "2: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = inet:nohost:25", "2: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = unix:relative.sock", "2: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = unix:/nonexistent-dir/x.sock", "2: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocketMode = 0999", "2: [Listener] SocketMode: ")]
    [InlineData("[Listener]\nSocketMode = rw", "2: [Listener] SocketMode: ")]
    [InlineData("[Listener]\nSocketGroup = no-such-group-xyz", "2: [Listener] SocketGroup: ")]
    [InlineData("[Listener]\nMaxConnections = 0", "2: [Listener] MaxConnections: ")]
    [InlineData("[Listener]\nMaxConnections = many", "2: [Listener] MaxConnections: ")]
    [InlineData("[Listener]\nDrainTimeout = soon", "2: [Listener] DrainTimeout: ")]
    [InlineData("[Listener]\nDrainTimeout = 2h", "2: [Listener] DrainTimeout: ")]
    [InlineData("[Milter]\nHandler = magic", "2: [Milter] Handler: ")]
    [InlineData("[Milter]\nEchoRecipients = -1", "2: [Milter] EchoRecipients: ")]
    [InlineData("[Milter]\nSpoolThreshold = 2G", "2: [Milter] SpoolThreshold: ")]
    [InlineData("[Milter]\nMaxMessageSize = 10X", "2: [Milter] MaxMessageSize: ")]
    [InlineData("[Milter]\nMaxPacketSize = 1000", "2: [Milter] MaxPacketSize: ")]
    [InlineData("[Milter]\nTempDirectory = /nonexistent-dir", "2: [Milter] TempDirectory: ")]
    [InlineData("[Milter]\nEchoRecipient = 3", "2: [Milter] EchoRecipient: unknown key")]
    [InlineData("[Logging]\nLevel = loud", "2: [Logging] Level: ")]
    [InlineData("[Logging]\nFile = /nonexistent-dir/log", "2: [Logging] File: ")]
    [InlineData("[Listner]\nSocket = inet:127.0.0.1:1", "1: [Listner]: unknown section")]
    [InlineData("this is not ini", "1: this is not ini: key outside any section")]
    [InlineData("[Listener]\nMaxConnections = 5\nMaxConnections = 6", "3: [Listener] MaxConnections: set twice (first on line 2); keep one")]
    [InlineData("[Listener]\nmaxconnections = 5\n\n; comment\nMaxConnections = 6", "5: [Listener] MaxConnections: set twice (first on line 2); keep one")]
    [InlineData("[Listener]\nSocket inet:127.0.0.1:25", "2: [Listener] Socket inet:127.0.0.1:25: not a 'Key = value' line")]
    [InlineData("[Listener]\n= inet:127.0.0.1:25", "2: [Listener] : not a 'Key = value' line")]
    [InlineData("[Listener\nSocket = inet:127.0.0.1:25", "1: [Listener: a section header is [Name]")]
    [InlineData("[Listener]\nSocket =", "2: [Listener] Socket: empty value; remove the line to use the default")]
    [InlineData("[Listener]\nMaxConnections = ", "2: [Listener] MaxConnections: empty value; remove the line to use the default")]
    [InlineData("[Keys]\nPassphraseFile = /nonexistent-securelist-passphrase", "2: [Keys] PassphraseFile: passphrase file /nonexistent-securelist-passphrase does not exist")]
    [InlineData("[Keys]\nPassphraseFile = /dev/null", "2: [Keys] PassphraseFile: passphrase file /dev/null is not a regular file")]
    [InlineData("[Directory]\nProvider = sqlite\n\nCacheRefreshSeconds = 9", "4: [Directory] CacheRefreshSeconds: ")]
    [InlineData("[Policy]\nProgressInterval = 241", "2: [Policy] ProgressInterval: ")]
    [InlineData("[Policy]\nProgressInterval = 10m", "2: [Policy] ProgressInterval: ")]
    [InlineData("\n\n[Metrics]\nListen = 10.0.0.1:9465", "4: [Metrics] Listen: ")]
    public void BadValuesNameFileLineSectionAndKey(string ini, string expected)
    {
        string path = Write(ini);
        ConfigurationException ex = Assert.Throws<ConfigurationException>(() => DaemonConfiguration.Load(path));
        Assert.StartsWith($"{path}:{expected}", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void EveryConfigurationErrorHasTheFileLineSectionKeyShape()
    {
        // The first line of each bad file above is located; a value error for a key that is absent names the header.
        string path = Write("[Listener]\nMaxConnections = lots\n");
        ConfigurationException ex = Assert.Throws<ConfigurationException>(() => DaemonConfiguration.Load(path));
        Assert.Matches(new Regex(@"^.+milter\.ini:\d+: \[[A-Za-z]+\] [A-Za-z]+: .+$"), ex.Message);
    }

    [Fact]
    public void ProgressIntervalTakesTheSecondsUnitLikeOtherDurations()
    {
        DaemonConfiguration c = DaemonConfiguration.Load(Write("[Policy]\nProgressInterval = 10s\n"));
        Assert.Equal(10, c.Get<PolicySection>().Options.ProgressInterval);
    }

    [Fact]
    public void PassphraseFileThatOthersCanReadIsRefusedAtStartUp()
    {
        string secret = Path.Combine(_dir, "passphrase");
        File.WriteAllText(secret, "correct horse\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        string path = Write($"[Keys]\nDirectory = {_dir}\nPassphraseFile = {secret}\n");
        ConfigurationException ex = Assert.Throws<ConfigurationException>(() => DaemonConfiguration.Load(path));
        Assert.StartsWith($"{path}:3: [Keys] PassphraseFile: ", ex.Message, StringComparison.Ordinal);

        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(secret, DaemonConfiguration.Load(path).Get<KeysSection>().Options.PassphraseFile);
    }

    [Fact]
    public void QuotedValuesLoseTheirQuotesAndCommentsAreSkipped()
    {
        DaemonConfiguration c = DaemonConfiguration.Load(Write("# comment\n; comment\n[Listener]\n  MaxConnections = \"7\"  \n"));
        Assert.Equal(7, c.Get<ListenerOptions>().MaxConnections);
    }

    [Fact]
    public void ADeviceIsNotReadAsAConfigurationFile()
    {
        ConfigurationException ex = Assert.Throws<ConfigurationException>(() => DaemonConfiguration.Load("/dev/zero"));
        Assert.Equal("/dev/zero: larger than 1024 KiB, not a configuration file", ex.Message);
    }

    [Fact]
    public void ListsHandlerIsTheDefault()
    {
        DaemonConfiguration c = DaemonConfiguration.Load(Write("[Listener]\nSocket = inet:127.0.0.1:8891"));
        Assert.Equal("lists", c.Get<MilterOptions>().Handler);
    }
}
