using MilterSecureList.Testing;

namespace MilterSecureList.Daemon.Tests;

/// <summary>OpenDKIM's miltertest (Debian package miltertest) as an independent MTA implementation.</summary>
public class MiltertestTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task EchoScriptPassesAgainstTheDaemon(bool unix)
    {
        string miltertest = ExternalTool.Require("miltertest", "miltertest");
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\n[Milter]\nHandler = echo\nEchoRecipients = 3\n", unix);

        // miltertest uses sendmail's socket syntax: inet:PORT@HOST.
        string spec = unix ? daemon.Socket : "inet:" + daemon.Socket.Split(':')[2] + "@127.0.0.1";
        string script = Path.Combine(AppContext.BaseDirectory, "Scripts", "echo.lua");
        (int rc, string stdout, string stderr) = await ExternalTool.RunAsync(miltertest, ["-s", script, "-D", "MILTER=" + spec, "-D", "ECHO_RCPTS=3"], TimeSpan.FromSeconds(120));
        Assert.True(rc == 0, $"miltertest rc={rc}: {stdout} {stderr}");
        Assert.Contains("echo.lua: OK", stdout, StringComparison.Ordinal);
        Assert.Equal(0, await daemon.StopAsync());
        await daemon.WaitForOutputAsync("QID3: conn=");
    }
}
