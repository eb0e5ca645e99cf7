using System.Globalization;
using System.Net.Sockets;
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
            await Poll.UntilAsync(
                async () =>
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
                },
                "a real client served while one-byte peers hold the slots",
                frameTimeout + TimeSpan.FromSeconds(5),
                TimeSpan.FromMilliseconds(100),
                () => $"{lastError}\n{daemon.Output}");
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
        await Poll.UntilAsync(
            async () =>
            {
                logged = daemon.Output.Split('\n').Count(l => l.Contains(closeLine, StringComparison.Ordinal));
                metrics = await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
                string? line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(Metric, StringComparison.Ordinal));
                return logged > 0 && line is not null && long.Parse(line[Metric.Length..], CultureInfo.InvariantCulture) == logged;
            },
            "as many close metrics as close log lines",
            TimeSpan.FromSeconds(10),
            TimeSpan.FromMilliseconds(100),
            () => $"{logged} log lines '{closeLine}', metrics:\n{metrics}\n{daemon.Output}");
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
        await daemon.WaitForOutputAsync("refused: not in [Listener] AllowFrom", TimeSpan.FromSeconds(10));
        await daemon.WaitForOutputAsync("peer=127.0.0.1:");
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
        await daemon.WaitForOutputAsync("closed: NegotiationTimeout", TimeSpan.FromSeconds(10));
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
        await daemon.WaitForOutputAsync("QFLOOD: conn=", TimeSpan.FromSeconds(10));
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
        await daemon.WaitForOutputAsync("QDISK: conn=", TimeSpan.FromSeconds(10));
        await daemon.WaitForOutputAsync("cannot store the body");
    }

    /// <summary>
    /// The daemon marks itself non-dumpable: the kernel then writes no core file, and the files under /proc/PID
    /// belong to root although the daemon runs as another user (as it does under systemd).
    /// </summary>
    [Fact]
    public async Task DaemonRunningAsAnotherUserIsNotDumpable()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\n[Milter]\nHandler = echo\n", unix: false, runAs: ("nobody", "nogroup"));
        string uidLine = File.ReadAllLines($"/proc/{daemon.ProcessId}/status").Single(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.Equal("65534", uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
        (int rc, string owner, _) = await ExternalTool.RunAsync("stat", ["-c", "%u", $"/proc/{daemon.ProcessId}/environ"]);
        Assert.Equal(0, rc);
        Assert.Equal("0", owner.Trim()); // a dumpable process's /proc files belong to its own user
    }
}
