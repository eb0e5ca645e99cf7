using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;
using Xunit.Abstractions;

namespace MilterSecureList.Daemon.Tests;

/// <summary>
/// The built daemon against peers on its socket that try to lock Postfix out or exhaust its memory, and the
/// faults and secrets of the process itself.
/// </summary>
public class HostilePeerDaemonTests(ITestOutputHelper output)
{
    private static readonly byte[] s_body = "hello\r\n"u8.ToArray();

    private static async Task<EndOfMessageResult> MessageAsync(TestMta mta, string queueId)
    {
        mta.Macro(MilterCommandCode.Mail, "i", queueId);
        await mta.MailAsync("<s@example.com>");
        await mta.RcptAsync("<r@example.com>");
        await mta.BodyAsync(s_body);
        mta.Macro(MilterCommandCode.EndOfMessage, "i", queueId);
        return await mta.EndOfMessageAsync();
    }

    /// <summary>Polls until <paramref name="condition"/> holds or the deadline passes.</summary>
    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < within)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return await condition();
    }

    [Fact]
    public async Task OneByteConnectionsBeyondMaxConnectionsCannotLockOutARealClient()
    {
        const int MaxConnections = 20;
        TimeSpan frameTimeout = TimeSpan.FromSeconds(2);
        int metricsPort = ExternalTool.FreeTcpPort();
        await using DaemonProcess daemon = await DaemonProcess.StartAsync($"""
            [Listener]
            Socket = {"{SOCKET}"}
            SocketMode = 0666
            MaxConnections = {MaxConnections}
            [Milter]
            Handler = echo
            FrameTimeout = 2s
            [Metrics]
            Listen = 127.0.0.1:{metricsPort}
            """);

        // Every slot (and ten more) taken by a peer that sends one byte and then nothing.
        var hostile = new List<Socket>();
        try
        {
            for (int i = 0; i < MaxConnections + 10; i++)
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(daemon.Socket[5..]));
                await s.SendAsync(new byte[] { 0 });
                hostile.Add(s);
            }

            // A real MTA retrying, as Postfix does with its next SMTP session, is served within FrameTimeout + 5 s.
            string? lastError = null;
            bool served = await EventuallyAsync(async () =>
            {
                try
                {
                    await using TestMta mta = await TestMta.ConnectAsync(daemon.Socket);
                    await mta.NegotiateAsync();
                    return (await MessageAsync(mta, "QREAL")).Final.Code == (byte)'c';
                }
                catch (Exception e) when (e is IOException or SocketException or InvalidDataException)
                {
                    lastError = e.Message;
                    return false;
                }
            }, frameTimeout + TimeSpan.FromSeconds(5));
            Assert.True(served, $"no real client served while one-byte peers held the slots: {lastError}\n{daemon.Output}");
        }
        finally
        {
            hostile.ForEach(s => s.Dispose());
        }

        // Each close is a log line naming the reason and the peer (this test process), and a metric.
        string closeLine = $"peer=unix:pid={Environment.ProcessId},uid=0 closed: NegotiationTimeout";
        using var http = new HttpClient();
        const string Metric = "securelist_milter_connections_closed_total{reason=\"negotiation_timeout\"} ";
        string metrics = string.Empty;
        int logged = 0;
        Assert.True(
            await EventuallyAsync(async () =>
            {
                logged = daemon.Output.Split('\n').Count(l => l.Contains(closeLine, StringComparison.Ordinal));
                metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
                string? line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(Metric, StringComparison.Ordinal));
                return logged > 0 && line is not null && long.Parse(line[Metric.Length..], CultureInfo.InvariantCulture) == logged;
            }, TimeSpan.FromSeconds(10)),
            $"{logged} log lines '{closeLine}', metrics:\n{metrics}\n{daemon.Output}");
    }

    [Fact]
    public async Task InetListenerRefusesPeersOutsideAllowFrom()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("""
            [Listener]
            Socket = {SOCKET}
            AllowFrom = 192.0.2.0/24, 2001:db8::/32
            [Milter]
            Handler = echo
            """, unix: false);
        await using TestMta mta = await TestMta.ConnectAsync(daemon.Socket);
        Assert.True(await mta.WaitForCloseAsync(), "a loopback peer outside AllowFrom got an answer");
        Assert.True(await EventuallyAsync(() => Task.FromResult(daemon.Output.Contains("refused: not in [Listener] AllowFrom", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)), daemon.Output);
        Assert.Contains("peer=127.0.0.1:", daemon.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoopbackIsAllowedByDefaultAndABadAllowFromIsAConfigError()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\n[Milter]\nHandler = echo\n", unix: false);
        await using (TestMta mta = await TestMta.ConnectAsync(daemon.Socket))
        {
            await mta.NegotiateAsync();
            Assert.Equal((byte)'c', (await MessageAsync(mta, "QLOOP")).Final.Code);
        }

        string bad = Path.Combine(daemon.Directory, "bad.ini");
        await File.WriteAllTextAsync(bad, "[Listener]\nAllowFrom = 10.0.0.5/8\n");
        (int rc, _, string stderr) = await DaemonProcess.RunToEndAsync("--check-config", "--config", bad);
        Assert.Equal(1, rc);
        Assert.Contains("[Listener] AllowFrom: '10.0.0.5/8'", stderr, StringComparison.Ordinal);
    }

    /// <summary>The benchmark's alternative transport serves the same handler, with its limits, over both socket kinds.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task PipelinesTransportServesTheSameMilterWithItsTimeouts(bool unix)
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\nSocketMode = 0666\nTransport = pipelines\n[Milter]\nHandler = echo\nFrameTimeout = 1s\n", unix);
        await using (TestMta mta = await TestMta.ConnectAsync(daemon.Socket))
        {
            await mta.NegotiateAsync();
            byte[] body = new byte[300_000];
            mta.Macro(MilterCommandCode.Mail, "i", "QPIP");
            await mta.MailAsync("<s@example.com>");
            await mta.RcptAsync("<r@example.com>");
            await mta.BodyAsync(body);
            EndOfMessageResult r = await mta.EndOfMessageAsync();
            Assert.Equal((byte)'c', r.Final.Code);
            Assert.Equal(body, r.ReplacedBody);
        }

        await using TestMta silent = await TestMta.ConnectAsync(daemon.Socket);
        Assert.True(await silent.WaitForCloseAsync(), "a silent peer was not closed");
        Assert.True(await EventuallyAsync(() => Task.FromResult(daemon.Output.Contains("closed: NegotiationTimeout", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)), daemon.Output);
        Assert.Equal(0, await daemon.StopAsync());
    }

    public static TheoryData<string> Floods => ["macros", "recipients", "headers"];

    /// <summary>
    /// One connection sends what once grew the daemon past 1 GB: 2,000 MACRO packets or 2,000 recipients of
    /// 250 KB, or 1,000 headers of 250 KB. The daemon stays under 300 MB, refuses the message with a log line
    /// naming its queue id, and serves another connection meanwhile.
    /// </summary>
    [Theory]
    [MemberData(nameof(Floods))]
    public async Task FloodOnOneConnectionKeepsTheDaemonSmallAndOthersServed(string flood)
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\nSocketMode = 0666\n[Milter]\nHandler = echo\n");
        await using TestMta attacker = await TestMta.ConnectAsync(daemon.Socket);
        await attacker.NegotiateAsync();
        attacker.Macro(MilterCommandCode.Mail, "i", "QFLOOD");
        await attacker.MailAsync("<s@example.com>");

        const int Size = 250 * 1000;
        int count = flood == "headers" ? 1000 : 2000;
        string? headerReply = null;
        for (int i = 0; i < count; i++)
        {
            string filler = i.ToString("D6", CultureInfo.InvariantCulture) + new string('x', Size);
            switch (flood)
            {
                case "macros":
                    // Connection-stage macros, every packet with new names: never cleared by a message.
                    byte stage = (byte)"CHU"[i % 3];
                    byte[] packet = [stage, .. TestMta.Strings(["{m" + i + "}", filler])];
                    await attacker.SendRawFrameAsync((byte)MilterCommandCode.Macro, packet);
                    break;
                case "recipients":
                    await attacker.SendRawFrameAsync((byte)MilterCommandCode.Recipient, TestMta.CString($"<{filler}@example.com>"));
                    break;
                default:
                    MilterReply? r = await attacker.HeaderAsync("X-Flood-" + i, filler);
                    if (r is not null && r.Code != (byte)'c')
                    {
                        headerReply ??= r.Strings[0];
                    }

                    break;
            }

            if (i == count / 2)
            {
                await using TestMta other = await TestMta.ConnectAsync(daemon.Socket);
                await other.NegotiateAsync();
                Assert.Equal((byte)'c', (await MessageAsync(other, "QOTHER")).Final.Code);
            }
        }

        long peakKb = StatusKb(daemon.ProcessId, "VmHWM");
        output.WriteLine($"{flood} flood: daemon peak RSS {peakKb / 1024} MB, now {StatusKb(daemon.ProcessId, "VmRSS") / 1024} MB");
        Assert.True(peakKb < 300 * 1024, $"daemon peak RSS {peakKb / 1024} MB after the {flood} flood");

        await attacker.BodyAsync(s_body);
        attacker.Macro(MilterCommandCode.EndOfMessage, "i", "QFLOOD");
        EndOfMessageResult end = await attacker.EndOfMessageAsync();
        string refusal = flood == "headers" ? headerReply ?? "(none)" : end.Final.Strings[0];
        string expected = flood switch { "macros" => "451 4.3.0", "recipients" => "452 4.5.3", _ => "552 5.3.4" };
        Assert.StartsWith(expected, refusal, StringComparison.Ordinal);
        Assert.True(await EventuallyAsync(() => Task.FromResult(daemon.Output.Contains("QFLOOD: conn=", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)), daemon.Output);
    }

    private static long StatusKb(int pid, string field)
    {
        string line = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task FullSpoolDiskTempfailsWith451AndALogLineWithTheQueueId()
    {
        using TinyTmpfs disk = TinyTmpfs.Mount("256k");
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(
            $"[Listener]\nSocket = {{SOCKET}}\n[Milter]\nHandler = echo\nSpoolThreshold = 0\nSpoolMemory = 0\nTempDirectory = {disk.Path}\n");
        await using TestMta mta = await TestMta.ConnectAsync(daemon.Socket);
        await mta.NegotiateAsync();
        mta.Macro(MilterCommandCode.Mail, "i", "QDISK");
        await mta.MailAsync("<s@example.com>");
        await mta.RcptAsync("<r@example.com>");
        await mta.BodyAsync(new byte[1024 * 1024]);
        mta.Macro(MilterCommandCode.EndOfMessage, "i", "QDISK");
        EndOfMessageResult end = await mta.EndOfMessageAsync();
        Assert.Equal((byte)'y', end.Final.Code);
        Assert.StartsWith("451 4.3.0", end.Final.Strings[0], StringComparison.Ordinal);
        Assert.True(await EventuallyAsync(() => Task.FromResult(daemon.Output.Contains("QDISK: conn=", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)), daemon.Output);
        Assert.Contains("cannot store the body", daemon.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// The daemon marks itself non-dumpable: the kernel then writes no core file, and the files under /proc/PID
    /// belong to root although the daemon runs as another user (as it does under systemd).
    /// </summary>
    [Fact]
    public async Task DaemonRunningAsAnotherUserIsNotDumpable()
    {
        ExternalTool.RequireRoot("starting the daemon as user nobody");
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-dump-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0x1ED);
        string socket = "inet:127.0.0.1:" + ExternalTool.FreeTcpPort();
        string ini = Path.Combine(dir, "milter.ini");
        await File.WriteAllTextAsync(ini, $"[Listener]\nSocket = {socket}\n[Milter]\nHandler = echo\n");
        var psi = new ProcessStartInfo(ExternalTool.Require("setpriv", "util-linux")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "--reuid=nobody", "--regid=nogroup", "--clear-groups", "dotnet", DaemonProcess.DaemonDll(), "--config", ini })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["HOME"] = dir;
        using Process p = Process.Start(psi)!;
        var output = new StringBuilder();
        p.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        p.BeginErrorReadLine();
        try
        {
            bool listening = await EventuallyAsync(async () =>
            {
                try
                {
                    await using TestMta probe = await TestMta.ConnectAsync(socket);
                    return true;
                }
                catch (SocketException)
                {
                    return p.HasExited;
                }
            }, TimeSpan.FromSeconds(30));
            Assert.True(listening && !p.HasExited, "daemon did not start as nobody: " + output);

            string uidLine = File.ReadAllLines($"/proc/{p.Id}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            Assert.Equal("65534", uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            (int rc, string owner, _) = await ExternalTool.RunAsync("stat", ["-c", "%u", $"/proc/{p.Id}/environ"]);
            Assert.Equal(0, rc);
            Assert.Equal("0", owner.Trim()); // a dumpable process's /proc files belong to its own user
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }
}
