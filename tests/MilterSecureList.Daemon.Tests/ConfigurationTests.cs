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
        Assert.Equal(50L * 1024 * 1024, c.Get<MilterOptions>().MaxMessageSize);
        Assert.Equal(256 * 1024, c.Get<MilterOptions>().MaxPacketSize);
        Assert.Equal("info", c.Get<LoggingOptions>().Level);
        foreach (string key in new[] { "Socket", "SocketMode", "SocketGroup", "MaxConnections", "DrainTimeout", "Handler", "EchoRecipients", "SpoolThreshold", "SpoolMemory", "MaxMessageSize", "MaxPacketSize", "TempDirectory", "Level", "File" })
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
            MaxMessageSize = 2M
            MaxPacketSize = 65535
            """));
        Assert.Equal($"{_dir}/m.sock", c.Get<ListenerOptions>().Socket.UnixPath);
        Assert.Equal((UnixFileMode)0x180, c.Get<ListenerOptions>().SocketMode);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), c.Get<ListenerOptions>().DrainTimeout);
        Assert.Equal("echo", c.Get<MilterOptions>().Handler);
        Assert.Equal(65536, c.Get<MilterOptions>().SpoolThreshold);
        Assert.Equal(2 * 1024 * 1024, c.Get<MilterOptions>().MaxMessageSize);
    }

    [Theory]
    [InlineData("[Listener]\nSocket = tcp:1.2.3.4:5", "milter.ini: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = inet:127.0.0.1:0", "milter.ini: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = inet:nohost:25", "milter.ini: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = unix:relative.sock", "milter.ini: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocket = unix:/nonexistent-dir/x.sock", "milter.ini: [Listener] Socket: ")]
    [InlineData("[Listener]\nSocketMode = 0999", "milter.ini: [Listener] SocketMode: ")]
    [InlineData("[Listener]\nSocketMode = rw", "milter.ini: [Listener] SocketMode: ")]
    [InlineData("[Listener]\nSocketGroup = no-such-group-xyz", "milter.ini: [Listener] SocketGroup: ")]
    [InlineData("[Listener]\nMaxConnections = 0", "milter.ini: [Listener] MaxConnections: ")]
    [InlineData("[Listener]\nMaxConnections = many", "milter.ini: [Listener] MaxConnections: ")]
    [InlineData("[Listener]\nDrainTimeout = soon", "milter.ini: [Listener] DrainTimeout: ")]
    [InlineData("[Listener]\nDrainTimeout = 2h", "milter.ini: [Listener] DrainTimeout: ")]
    [InlineData("[Milter]\nHandler = magic", "milter.ini: [Milter] Handler: ")]
    [InlineData("[Milter]\nEchoRecipients = -1", "milter.ini: [Milter] EchoRecipients: ")]
    [InlineData("[Milter]\nSpoolThreshold = 2G", "milter.ini: [Milter] SpoolThreshold: ")]
    [InlineData("[Milter]\nMaxMessageSize = 10X", "milter.ini: [Milter] MaxMessageSize: ")]
    [InlineData("[Milter]\nMaxPacketSize = 1000", "milter.ini: [Milter] MaxPacketSize: ")]
    [InlineData("[Milter]\nTempDirectory = /nonexistent-dir", "milter.ini: [Milter] TempDirectory: ")]
    [InlineData("[Milter]\nEchoRecipient = 3", "milter.ini: [Milter] EchoRecipient: unknown key")]
    [InlineData("[Logging]\nLevel = loud", "milter.ini: [Logging] Level: ")]
    [InlineData("[Logging]\nFile = /nonexistent-dir/log", "milter.ini: [Logging] File: ")]
    [InlineData("[Listner]\nSocket = inet:127.0.0.1:1", "milter.ini: [Listner]: unknown section")]
    [InlineData("this is not ini", "milter.ini: ")]
    public void BadValuesNameSectionAndKey(string ini, string expectedPrefix)
    {
        ConfigurationException ex = Assert.Throws<ConfigurationException>(() => DaemonConfiguration.Load(Write(ini)));
        Assert.StartsWith(expectedPrefix, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void ListsHandlerIsTheDefault()
    {
        DaemonConfiguration c = DaemonConfiguration.Load(Write("[Listener]\nSocket = inet:127.0.0.1:8891"));
        Assert.Equal("lists", c.Get<MilterOptions>().Handler);
    }
}
