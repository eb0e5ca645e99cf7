using System.Net.Sockets;
using System.Text;
using MilterSecureList.EndToEnd.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// Only the crypto list and lists for breaking things; no expired member, no gpgsm/NSS set-up. The directory is
/// PostgreSQL (the shared back end of several milter nodes), so "directory unavailable" is a real server outage.
/// </summary>
public sealed class FaultWorld : PostgresWorld
{
    public const string Keyless = "keyless@" + Domain;
    public const string Dirless = "dirless@" + Domain;

    protected override bool Full => false;

    protected override async Task CreateMoreAsync()
    {
        await CreateListAsync(Keyless, "alice", "bob");
        await CreateListAsync(Dirless, "alice", "carol");
    }
}

/// <summary>
/// Faults: the milter killed in the middle of a message, the directory or a key file gone,
/// and list mail that bypasses the milter. Postfix must defer, never deliver a list message unexpanded.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class FaultTests(FaultWorld world) : IClassFixture<FaultWorld>
{
    private static string Addr(string raw) => raw.Replace("TO:", "", StringComparison.OrdinalIgnoreCase).Trim('<', '>');

    private static string FinalReply(Swaks s)
    {
        string[] lines = s.Transcript.Split('\n').Select(l => l.Trim()).ToArray();
        int i = Array.FindLastIndex(lines, l => l.StartsWith("-> .", StringComparison.Ordinal));
        Assert.True(i >= 0, $"no end of DATA in the transcript: {s}");
        string reply = lines.Skip(i + 1).First(l => l.StartsWith('<'));
        return reply[(reply.IndexOf(' ', StringComparison.Ordinal) + 1)..];
    }

    [Fact]
    public async Task Milter_killed_in_the_middle_of_a_message_defers_and_the_retry_after_restart_delivers_exactly_once()
    {
        const string subject = "fault sigkill";
        byte[] entity = Smime.Entity("survives a SIGKILL of the milter");
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Crypto, subject, entity, [world.ListCert(ListWorld.Crypto)], "-aes256");

        // Our own SMTP client, so the kill lands at a known point: the milter has seen CONNECT, MAIL and RCPT
        // (its session for this message is open) and Postfix holds the body, but end of message is not yet sent.
        using (var client = new TcpClient())
        {
            await client.ConnectAsync("127.0.0.1", world.Postfix.SmtpPort);
            NetworkStream stream = client.GetStream();
            stream.ReadTimeout = 120_000;
            var reader = new StreamReader(stream, Encoding.Latin1);
            async Task<string> ReplyAsync()
            {
                string line;
                do
                {
                    line = await reader.ReadLineAsync() ?? throw new IOException("Postfix closed the connection");
                }
                while (line.Length > 3 && line[3] == '-');
                return line;
            }

            async Task<string> SendAsync(string command)
            {
                await stream.WriteAsync(Encoding.Latin1.GetBytes(command + "\r\n"));
                return await ReplyAsync();
            }

            Assert.StartsWith("220", await ReplyAsync(), StringComparison.Ordinal);
            Assert.StartsWith("250", await SendAsync("EHLO client.e2e.test"), StringComparison.Ordinal);
            Assert.StartsWith("250", await SendAsync($"MAIL FROM:<{world["dave"].Address}>"), StringComparison.Ordinal);
            Assert.StartsWith("250", await SendAsync($"RCPT TO:<{ListWorld.Crypto}>"), StringComparison.Ordinal); // the milter answered RCPT
            Assert.StartsWith("354", await SendAsync("DATA"), StringComparison.Ordinal);
            string text = (await File.ReadAllTextAsync(post)).ReplaceLineEndings("\r\n");
            await stream.WriteAsync(Encoding.Latin1.GetBytes(text.EndsWith("\r\n", StringComparison.Ordinal) ? text : text + "\r\n"));
            await stream.FlushAsync();

            ExternalTool.Signal(world.Daemon.ProcessId, "KILL");
            await Poll.UntilAsync(() => world.Daemon.HasExited, "securelist-milter to die of SIGKILL", TimeSpan.FromSeconds(5));
            string final = await SendAsync(".");
            // milter_default_action = tempfail (contrib/postfix): the client keeps the message and retries.
            Assert.StartsWith("451 4.7.1", final, StringComparison.Ordinal);
            await SendAsync("QUIT");
        }

        await world.Postfix.WaitForQueueEmptyAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(world.ReceivedNow(subject));

        await world.RestartDaemonAsync();
        Swaks retry = await world.SendAsync(world["dave"].Address, [ListWorld.Crypto], post);
        Assert.True(retry.Accepted, retry.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        await world.Postfix.WaitForQueueEmptyAsync(TimeSpan.FromSeconds(30));
        got = world.ReceivedNow(subject);
        List<string> rcpts = [.. got.SelectMany(m => m.Recipients).Select(Addr).Order()];
        Assert.Equal(new[] { "alice", "bob", "carol", "gina", "nina" }.Select(n => world[n].Address).Order(), rcpts); // each member exactly once
        Assert.Equal(entity, await world.OpensslDecryptAsync(got[0], world["bob"]));
    }

    [Fact]
    public async Task Unreadable_list_key_tempfails_with_4_3_0_and_nothing_is_delivered()
    {
        const string subject = "fault key file";
        string post = await world.OpensslPostAsync(world["dave"].Address, FaultWorld.Keyless, subject, Smime.Entity("key gone"), [world.ListCert(FaultWorld.Keyless)], "-aes256");
        string keys = Path.Combine(world.Dir, "keys");
        string[] files = System.IO.Directory.GetFiles(keys, FaultWorld.Keyless + ".*");
        Assert.NotEmpty(files);
        foreach (string f in files)
        {
            File.Move(f, f + ".away");
        }

        try
        {
            Swaks s = await world.SendAsync(world["dave"].Address, [FaultWorld.Keyless], post);
            Assert.NotEqual(0, s.ExitCode);
            Assert.Equal("451 4.3.0 temporary failure in list processing, try again later", FinalReply(s));
            await world.WaitForMilterLogAsync("keyless@lists.e2e.test", TimeSpan.FromSeconds(5));
        }
        finally
        {
            foreach (string f in files)
            {
                File.Move(f + ".away", f);
            }
        }

        await world.Postfix.WaitForQueueEmptyAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(world.ReceivedNow(subject));
    }

    [Fact]
    public async Task Directory_unavailable_before_the_first_expansion_tempfails_with_4_3_0()
    {
        const string subject = "fault directory";
        string post = await world.OpensslPostAsync(world["dave"].Address, FaultWorld.Dirless, subject, Smime.Entity("directory gone"), [world.ListCert(FaultWorld.Dirless)], "-aes256");
        // The daemon knows the list (its cache loaded the list table at start) but has not expanded it yet:
        // the expansion needs the database server, which is now down.
        await world.Database.StopAsync();
        try
        {
            Swaks s = await world.SendAsync(world["dave"].Address, [FaultWorld.Dirless], post);
            Assert.NotEqual(0, s.ExitCode);
            Assert.Equal("451 4.3.0 list directory temporarily unavailable, try again later", FinalReply(s));
        }
        finally
        {
            await world.Database.StartAsync();
        }

        await world.Postfix.WaitForQueueEmptyAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(world.ReceivedNow(subject));

        // With the server back, the client's retry goes through.
        Swaks retry = await world.SendAsync(world["dave"].Address, [FaultWorld.Dirless], post);
        Assert.True(retry.Accepted, retry.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        Assert.Equal(new[] { world["alice"].Address, world["carol"].Address }.Order(), got.SelectMany(m => m.Recipients).Select(Addr).Order());
    }

    [Fact]
    public async Task List_mail_that_bypasses_the_milter_waits_deferred_and_never_leaves_unexpanded()
    {
        const string subject = "fault bypass";
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Crypto, subject, Smime.Entity("bypass"), [world.ListCert(ListWorld.Crypto)], "-aes256");
        Swaks s = await world.SendAsync(world["dave"].Address, [ListWorld.Crypto], post, port: world.Mta.BypassPort);
        Assert.True(s.Accepted, s.ToString()); // no milter on that smtpd: Postfix queues it
        string queueId = System.Text.RegularExpressions.Regex.Match(s.Transcript, @"250 2\.0\.0 Ok: queued as (\w+)").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(queueId), s.ToString());

        // Evidence from the log, by queue id: the queue directory a file sits in changes while qmgr works
        // (deferred -> active on every queue run, "skipped, still being delivered" in between), so polling
        // the deferred/ directory raced with other tests' queue runs. The log lines do not go away.
        await WaitForDeferralsAsync(queueId, 1);
        Assert.True(world.Postfix.IsQueued(queueId), "the list message left the queue after its first deferral");

        // Even an explicit queue run does not deliver it: the run ends with one more deferral of the same message.
        await world.Postfix.FlushQueueAsync();
        await WaitForDeferralsAsync(queueId, 2);
        Assert.True(world.Postfix.IsQueued(queueId), "the list message left the queue after a flush");
        Assert.Empty(world.ReceivedNow(subject));
        Assert.DoesNotContain(world.Postfix.ReadMailLog().Split('\n'), l => l.Contains($" {queueId}: ", StringComparison.Ordinal) && l.Contains("status=sent", StringComparison.Ordinal));
        (await ExternalTool.RunAsync("postsuper", ["-c", world.Postfix.ConfigDirectory, "-d", queueId])).EnsureSuccess();
    }

    /// <summary>Waits (bounded) until the maillog shows COUNT deferrals of QUEUEID to the list address.</summary>
    private async Task WaitForDeferralsAsync(string queueId, int count)
    {
        int deferrals = 0;
        await Poll.UntilAsync(
            () =>
            {
                deferrals = world.Postfix.ReadMailLog().Split('\n').Count(l => l.Contains($" {queueId}: to=<{ListWorld.Crypto}>", StringComparison.Ordinal) && l.Contains("status=deferred", StringComparison.Ordinal));
                return deferrals >= count;
            },
            $"{count} deferral(s) of {queueId}",
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100),
            () => $"{queueId} was deferred {deferrals} time(s); maillog:\n" + ListWorld.Tail(world.Postfix.ReadMailLog(), 15));
    }

    /// <summary>The queue file of QUEUEID exists in one of Postfix's queues (whichever it is in right now).</summary>
    private bool IsQueued(string queueId) =>
        new[] { "maildrop", "incoming", "active", "deferred", "hold" }
            .Select(d => Path.Combine(world.Postfix.QueueDirectory, d))
            .Where(System.IO.Directory.Exists)
            .Any(d => System.IO.Directory.EnumerateFiles(d, queueId, SearchOption.AllDirectories).Any());
}
