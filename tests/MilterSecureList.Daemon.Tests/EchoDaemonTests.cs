using System.Net.Sockets;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Daemon.Tests;

/// <summary>The built securelist-milter binary with the echo handler, driven by the TestMta over real sockets.</summary>
public class EchoDaemonTests
{
    private const string EchoIni = """
        [Listener]
        Socket = {SOCKET}
        SocketMode = 0666
        [Milter]
        Handler = echo
        EchoRecipients = 4
        SpoolThreshold = 64K
        [Logging]
        Level = debug
        """;

    private static async Task<EndOfMessageResult> MessageAsync(TestMta mta, string queueId, string[] rcpts, byte[] body)
    {
        mta.Macro(MilterCommandCode.Mail, "{mail_addr}", "s@example.com");
        await mta.MailAsync("<s@example.com>");
        foreach (string r in rcpts)
        {
            mta.Macro(MilterCommandCode.Recipient, "i", queueId);
            await mta.RcptAsync(r);
        }

        await mta.BodyAsync(body);
        mta.Macro(MilterCommandCode.EndOfMessage, "i", queueId);
        return await mta.EndOfMessageAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task EchoesSeveralMessagesOverUnixAndTcpSockets(bool unix)
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(EchoIni, unix);
        await using TestMta mta = await TestMta.ConnectAsync(daemon.Socket);
        await mta.NegotiateAsync();
        Assert.Equal(MilterActions.ChangeBody | MilterActions.AddRecipient | MilterActions.DeleteRecipient | MilterActions.SetSymbolList, mta.Actions);
        for (int n = 1; n <= 3; n++)
        {
            byte[] body = Enumerable.Range(0, 100_000 * n).Select(i => (byte)(i % 251)).ToArray();
            EndOfMessageResult r = await MessageAsync(mta, "QID" + n, [$"<list{n}@example.com>", "<b@example.com>"], body);
            Assert.Equal((byte)'c', r.Final.Code);
            Assert.Equal([$"<list{n}@example.com>"], r.DeletedRecipients);
            Assert.Equal(["<echo1@echo.invalid>", "<echo2@echo.invalid>", "<echo3@echo.invalid>", "<echo4@echo.invalid>"], r.AddedRecipients);
            Assert.Equal(body, r.ReplacedBody);
            Assert.All(r.BodyChunks, c => Assert.True(c.Payload.Length <= 65535));
            await mta.AbortAsync();
        }

        // ABORT in the middle of a message, then a complete one.
        await mta.MailAsync("<s@example.com>");
        await mta.RcptAsync("<gone@example.com>");
        await mta.AbortAsync();
        EndOfMessageResult last = await MessageAsync(mta, "QID9", ["<last@example.com>"], "x\r\n"u8.ToArray());
        Assert.Equal(["<last@example.com>"], last.DeletedRecipients);
        await mta.QuitAsync();
        Assert.True(await mta.WaitForCloseAsync());
        Assert.Equal(0, await daemon.StopAsync());
        await daemon.WaitForOutputAsync("QID2: conn="); // per-message line with queue id
    }

    [Fact]
    public async Task UnixSocketGetsTheConfiguredModeAndAStaleSocketIsReplaced()
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-stale-").FullName;
        try
        {
            string path = Path.Combine(dir, "m.sock");
            // A socket file left behind by a dead process (.NET would unlink its own on dispose).
            var made = await ExternalTool.RunAsync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path]);
            Assert.Equal(0, made.ExitCode);

            Assert.True(File.Exists(path));
            await using DaemonProcess daemon = await DaemonProcess.StartAsync($"[Listener]\nSocket = unix:{path}\nSocketMode = 0640\nSocketGroup = postfix\n[Milter]\nHandler = echo\n");
            // Mode and group are applied right after Kestrel binds; the start-up probe may connect a moment earlier,
            // so both are polled for together (one stat reads them at the same instant).
            string seen = "";
            await Poll.UntilAsync(async () =>
            {
                seen = (await ExternalTool.RunAsync("stat", ["-c", "%a %G", path])).StdOut.Trim();
                return seen == "640 postfix";
            }, "socket mode 0640, group postfix", TimeSpan.FromSeconds(10), evidence: () => seen);
            await using TestMta mta = await TestMta.ConnectAsync("unix:" + path);
            await mta.NegotiateAsync();
            Assert.Equal(6u, mta.Version);
        }
        finally
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ASecondDaemonRefusesASocketInUse()
    {
        await using DaemonProcess first = await DaemonProcess.StartAsync(EchoIni);
        string path = Path.Combine(first.Directory, "second.ini");
        await File.WriteAllTextAsync(path, $"[Listener]\nSocket = {first.Socket}\n");
        (int rc, _, string stderr) = await DaemonProcess.RunToEndAsync("--config", path);
        Assert.Equal(1, rc);
        Assert.Contains("in use", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SocketCompletionsRunOnOneEventThreadPerCore()
    {
        // Inline socket completions (SocketEventThreads) give one ".NET Sockets" thread per core; without them
        // the runtime starts one for up to 30 cores. On a one-core machine both are 1 and this cannot tell.
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(EchoIni);
        await using (TestMta mta = await TestMta.ConnectAsync(daemon.Socket))
        {
            await mta.NegotiateAsync();
            EndOfMessageResult r = await MessageAsync(mta, "QT", ["<a@x>"], "hi\r\n"u8.ToArray());
            Assert.Equal((byte)'c', r.Final.Code);
        }

        int eventThreads = System.IO.Directory.GetDirectories($"/proc/{daemon.ProcessId}/task").Count(t => ThreadName(t) == ".NET Sockets");
        Assert.Equal(Environment.ProcessorCount, eventThreads);
    }

    private static string? ThreadName(string taskDirectory)
    {
        try
        {
            return File.ReadAllText(Path.Combine(taskDirectory, "comm")).Trim();
        }
        catch (IOException)
        {
            return null; // a pool thread that exited while we listed them
        }
    }

    [Fact]
    public async Task ProtocolViolationClosesOnlyThatConnection()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(EchoIni);
        await using TestMta good = await TestMta.ConnectAsync(daemon.Socket);
        await good.NegotiateAsync();
        await using TestMta bad = await TestMta.ConnectAsync(daemon.Socket);
        await bad.NegotiateAsync();
        await bad.SendBytesAsync(new byte[] { 0x7F, 0xFF, 0xFF, 0xFF, (byte)'B' });
        Assert.True(await bad.WaitForCloseAsync());
        EndOfMessageResult r = await MessageAsync(good, "Q1", ["<a@example.com>"], "ok\r\n"u8.ToArray());
        Assert.Equal((byte)'c', r.Final.Code);
        await good.QuitAsync();
        Assert.Equal(0, await daemon.StopAsync());
        await daemon.WaitForOutputAsync("protocol violation FrameTooLarge");
    }

    [Fact]
    public async Task ConnectionsBeyondMaxConnectionsAreClosed()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(EchoIni.Replace("SocketMode = 0666", "SocketMode = 0666\nMaxConnections = 2", StringComparison.Ordinal));
        // The start-up probe connection may still hold a slot for a moment: retry (bounded) until two are in.
        await using TestMta a = await NegotiatedAsync(daemon.Socket);
        await using TestMta b = await NegotiatedAsync(daemon.Socket);
        await using TestMta c = await TestMta.ConnectAsync(daemon.Socket);
        await Assert.ThrowsAnyAsync<Exception>(() => c.NegotiateAsync()); // closed without an OPTNEG reply
        await a.QuitAsync();
        Assert.True(await a.WaitForCloseAsync());

        // A slot is free again once a connection ends (Kestrel releases it asynchronously: retry, bounded).
        await using TestMta d = await NegotiatedAsync(daemon.Socket);
    }

    /// <summary>A connection the daemon negotiates, retried (bounded) while every slot is still taken.</summary>
    private static Task<TestMta> NegotiatedAsync(string socket) =>
        Poll.ForAsync(
            async () =>
            {
                TestMta mta = await TestMta.ConnectAsync(socket);
                try
                {
                    await mta.NegotiateAsync();
                    return mta;
                }
                catch (Exception ex) when (ex is IOException or EndOfStreamException or SocketException)
                {
                    await mta.DisposeAsync();
                    return null;
                }
            },
            "a free connection slot",
            TimeSpan.FromSeconds(5),
            TimeSpan.FromMilliseconds(100));

    [Fact]
    public async Task SigtermLetsTheOpenMessageFinishThenExitsZero()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(EchoIni);
        await using TestMta busy = await TestMta.ConnectAsync(daemon.Socket);
        await busy.NegotiateAsync();
        await busy.MailAsync("<s@example.com>");
        await busy.RcptAsync("<l@example.com>");
        await busy.BodyAsync("part one\r\n"u8.ToArray());
        await busy.FlushAsync();
        await using TestMta idle = await TestMta.ConnectAsync(daemon.Socket);
        await idle.NegotiateAsync();

        daemon.Terminate();
        Assert.True(await idle.WaitForCloseAsync(), "idle connection closed by the drain");
        await busy.BodyAsync("part two\r\n"u8.ToArray());
        EndOfMessageResult r = await busy.EndOfMessageAsync();
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Equal("part one\r\npart two\r\n"u8.ToArray(), r.ReplacedBody);
        Assert.True(await busy.WaitForCloseAsync(), "busy connection closed after its message");
        Assert.Equal(0, await daemon.StopAsync());
    }
}
