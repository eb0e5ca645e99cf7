using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using MilterSecureList.EndToEnd.Tests.Infrastructure;
using MilterSecureList.Testing;
using Xunit.Abstractions;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// Two mail hosts on one PostgreSQL directory (docs/operations.md): node A is the base world (Postfix with the
/// contrib snippets, securelist-milter, key directory A); node B has its own Postfix, daemon and key directory
/// and gets the crypto list's key files with <c>securelist list export-key</c> / <c>import-key</c>.
/// </summary>
public sealed class TwoNodeWorld : PostgresWorld
{
    /// <summary>Node A's socket, Postfix and daemon are the base world's.</summary>
    public Node A { get; private set; } = null!;

    public Node B { get; private set; } = null!;

    protected override bool Full => false;

    protected override async Task StartedAsync()
    {
        A = new Node("A", this, Dir, Config);
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-e2e-b-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0x1ED); // 0755: Postfix reaches the socket
        string config = Path.Combine(dir, "milter.ini");
        string socket = "unix:" + Path.Combine(dir, "milter.sock");
        SecureListPostfix mta = await SecureListPostfix.StartAsync(socket, Domain);
        await File.WriteAllTextAsync(config, MilterIni(dir, socket, mta.Postfix.SmtpPort));
        B = new Node("B", this, dir, config) { Mta = mta };
        await CopyKeysAsync(Crypto, A, B);
        await B.StartDaemonAsync();
    }

    /// <summary>What an operator does for a new list: export its key files on one host, import them on another.</summary>
    public static async Task CopyKeysAsync(string list, Node from, Node to)
    {
        string bundle = Path.Combine(from.Dir, $"{list}.{Guid.NewGuid():N}.keys");
        await SecureListCli.MustRunAsync(from.Config, "list", "export-key", list, "--out", bundle);
        await SecureListCli.MustRunAsync(to.Config, "list", "import-key", "--in", bundle);
        File.Delete(bundle);
    }

    public override async Task DisposeAsync()
    {
        if (B is not null)
        {
            await B.DisposeAsync();
        }

        await base.DisposeAsync();
    }
}

/// <summary>One mail host: Postfix, securelist-milter, its milter.ini and key directory.</summary>
public sealed class Node(string name, ListWorld world, string dir, string config) : IAsyncDisposable
{
    private DaemonProcess? _daemon;
    private SecureListPostfix? _mta;

    public string Name { get; } = name;

    public string Dir { get; } = dir;

    public string Config { get; } = config;

    public SecureListPostfix Mta
    {
        get => _mta ?? world.Mta;
        init => _mta = value;
    }

    public PostfixInstance Postfix => Mta.Postfix;

    public DaemonProcess Daemon => _daemon ?? world.Daemon;

    /// <summary>Starts this node's daemon (again, after a kill: the previous process is reaped first).</summary>
    public async Task StartDaemonAsync()
    {
        if (_daemon is not null)
        {
            await _daemon.DisposeAsync();
        }

        _daemon = await DaemonProcess.StartAsync(await File.ReadAllTextAsync(Config));
    }

    public async ValueTask DisposeAsync()
    {
        if (_daemon is not null)
        {
            await _daemon.DisposeAsync();
        }

        if (_mta is not null)
        {
            await _mta.DisposeAsync();
        }

        try
        {
            System.IO.Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public override string ToString() => "node " + Name;
}

/// <summary>How one SMTP submission ended, from the client's side.</summary>
public enum Outcome
{
    /// <summary>250 after the final dot: the server has the message.</summary>
    Queued,

    /// <summary>A 4xx at any step: the client keeps the message and retries.</summary>
    Tempfailed,

    /// <summary>A 5xx: the message would bounce. Never acceptable here.</summary>
    Refused,

    /// <summary>The connection failed before an answer to the final dot: the client keeps the message.</summary>
    NoAnswer,
}

public sealed record Submission(string Subject, Node Node, Outcome Outcome, string Reply);

/// <summary>
/// Issue: two mail hosts on one directory. Member changes made on A reach B, a list made on A works on B once
/// its keys are there, killing B under load loses nothing, and a PostgreSQL restart under load loses nothing.
/// Every message is accounted for by subject: delivered to every member exactly once, re-keyed, from one node.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class TwoNodeTests(TwoNodeWorld world, ITestOutputHelper output) : IClassFixture<TwoNodeWorld>
{
    private static readonly string[] CryptoMembers = ["alice", "bob", "carol", "gina", "nina"];

    private static string Addr(string raw) => raw.Replace("TO:", "", StringComparison.OrdinalIgnoreCase).Trim('<', '>');

    [Fact]
    public async Task A_member_added_or_removed_on_node_A_is_applied_by_node_B_within_the_refresh_period()
    {
        byte[] cms = await CryptoCmsAsync();
        await SecureListCli.MustRunAsync(world.A.Config, "member", "add", ListWorld.Crypto, world["dave"].Address, "--cert", world["dave"].CertPath);
        try
        {
            TimeSpan added = await UntilNodeBDeliversAsync(cms, "member added", rcpts => rcpts.Contains(world["dave"].Address));
            output.WriteLine($"node B re-keyed for the added member {added.TotalSeconds:F1} s after the CLI on node A returned (CacheRefreshSeconds = {ListWorld.CacheRefreshSeconds})");
        }
        finally
        {
            await SecureListCli.MustRunAsync(world.A.Config, "member", "remove", ListWorld.Crypto, world["dave"].Address);
        }

        TimeSpan removed = await UntilNodeBDeliversAsync(cms, "member removed", rcpts => !rcpts.Contains(world["dave"].Address));
        output.WriteLine($"node B stopped re-keying for the removed member {removed.TotalSeconds:F1} s after the CLI on node A returned");
    }

    [Fact]
    public async Task A_list_created_on_node_A_works_on_node_B_once_its_key_files_are_there()
    {
        string list = $"fresh{Guid.NewGuid():N}"[..12] + "@" + ListWorld.Domain;
        await world.CreateListAsync(list, "alice", "bob");
        // Members-only, so that node B's knowledge of the list is visible at RCPT (a non-member is refused there)
        // without queueing anything.
        await SecureListCli.MustRunAsync(world.A.Config, "list", "set", list, "--policy", "members-only");
        await UntilAsync(async () => (await RcptReplyAsync(world.B, world["mallory"].Address, list)).StartsWith("550", StringComparison.Ordinal), "node B to learn the new list");

        string post = await world.OpensslPostAsync(world["alice"].Address, list, "new list on B", Smime.Entity("made on A, posted on B"), [world.ListCert(list)], "-aes256");
        byte[] message = await File.ReadAllBytesAsync(post);

        // Key files only on A: node B tempfails, the sender's server keeps the post.
        Submission early = await SubmitAsync(world.B, world["alice"].Address, list, "new list on B", message);
        Assert.Equal(Outcome.Tempfailed, early.Outcome);
        Assert.StartsWith("451 4.3.0", early.Reply, StringComparison.Ordinal);

        await TwoNodeWorld.CopyKeysAsync(list, world.A, world.B);
        Submission retry = await SubmitAsync(world.B, world["alice"].Address, list, "new list on B", message);
        Assert.True(retry.Outcome == Outcome.Queued, retry.Reply);
        SinkMessage got = Assert.Single(await DeliveredAsync(world.B, "new list on B"));
        Assert.Equal(new[] { world["alice"].Address, world["bob"].Address }.Order(), got.Recipients.Select(Addr).Order());
        Assert.Equal(Smime.Entity("made on A, posted on B"), await world.OpensslDecryptAsync(got, world["bob"]));
    }

    [Fact]
    public async Task Killing_node_B_under_load_loses_nothing_and_node_A_keeps_serving()
    {
        byte[] cms = await CryptoCmsAsync();
        const int perNode = 16;
        string run = Guid.NewGuid().ToString("N")[..6];
        var killed = new TaskCompletionSource();
        var results = new ConcurrentBag<Submission>();
        int sentToB = 0;

        async Task SendToAsync(Node node, string lane)
        {
            for (int i = 0; i < perNode / 2; i++)
            {
                string subject = $"kill-{run}-{node.Name}{lane}-{i}";
                results.Add(await SubmitAsync(node, world["dave"].Address, ListWorld.Crypto, subject, Smime.Message(world["dave"].Address, ListWorld.Crypto, subject, cms)));
                if (node == world.B && i == (perNode / 4) - 1)
                {
                    Interlocked.Add(ref sentToB, perNode / 4);
                    await killed.Task; // the second half of B's load runs against a dead milter
                }
            }
        }

        Task[] senders = [SendToAsync(world.A, "x"), SendToAsync(world.A, "y"), SendToAsync(world.B, "x"), SendToAsync(world.B, "y")];
        await UntilAsync(() => Task.FromResult(Volatile.Read(ref sentToB) >= perNode / 2), "node B's first half of the load to finish");
        ExternalTool.Signal(world.B.Daemon.ProcessId, "KILL");
        await UntilAsync(() => Task.FromResult(world.B.Daemon.HasExited), "securelist-milter on node B to die of SIGKILL");
        killed.SetResult();
        await Task.WhenAll(senders);

        try
        {
            Submission[] all = [.. results];
            Assert.Equal(2 * perNode, all.Length);
            Assert.DoesNotContain(all, s => s.Outcome == Outcome.Refused);
            Assert.All(all.Where(s => s.Node == world.A), s => Assert.True(s.Outcome == Outcome.Queued, $"node A did not keep serving: {s}"));
            Submission[] keptByClient = [.. all.Where(s => s.Outcome is Outcome.Tempfailed or Outcome.NoAnswer)];
            Assert.NotEmpty(keptByClient); // B's milter was dead for half of its load: Postfix tempfailed it
            Assert.All(keptByClient, s => Assert.Equal(world.B, s.Node));
            output.WriteLine($"{all.Count(s => s.Outcome == Outcome.Queued)} queued, {keptByClient.Length} tempfailed (kept by the client) of {all.Length}");

            // The client retries what it kept at the other MX, node A.
            foreach (Submission s in keptByClient)
            {
                Submission retry = await SubmitAsync(world.A, world["dave"].Address, ListWorld.Crypto, s.Subject, Smime.Message(world["dave"].Address, ListWorld.Crypto, s.Subject, cms));
                Assert.True(retry.Outcome == Outcome.Queued, retry.ToString());
            }

            await AccountForEveryMessageAsync([.. all.Select(s => s.Subject)]);
        }
        finally
        {
            await world.B.StartDaemonAsync();
        }
    }

    [Fact]
    public async Task The_PostgreSQL_server_restarting_under_load_gives_451_where_the_directory_is_needed_and_loses_nothing()
    {
        byte[] cms = await CryptoCmsAsync();
        // A list neither node has expanded yet: during the outage its expansion needs the server.
        string cold = $"cold{Guid.NewGuid():N}"[..11] + "@" + ListWorld.Domain;
        await world.CreateListAsync(cold, "alice", "carol");
        await TwoNodeWorld.CopyKeysAsync(cold, world.A, world.B);
        byte[] coldPost = await File.ReadAllBytesAsync(await world.OpensslPostAsync(world["dave"].Address, cold, "cold list", Smime.Entity("needs the directory"), [world.ListCert(cold)], "-aes256"));
        // Both nodes must know the list (else it is no list to them and Postfix holds the post as list-domain
        // mail), yet neither may have expanded it: members-only makes the list visible at RCPT (a non-member
        // is refused, which expands it), then "open" makes both nodes reload without expanding it again.
        await SecureListCli.MustRunAsync(world.A.Config, "list", "set", cold, "--policy", "members-only");
        foreach (Node node in new[] { world.A, world.B })
        {
            await UntilAsync(async () => (await RcptReplyAsync(node, world["mallory"].Address, cold)).StartsWith("550", StringComparison.Ordinal), $"{node} to learn the list");
        }

        await SecureListCli.MustRunAsync(world.A.Config, "list", "set", cold, "--policy", "open");
        foreach (Node node in new[] { world.A, world.B })
        {
            await UntilAsync(async () => (await RcptReplyAsync(node, world["mallory"].Address, cold)).StartsWith("250", StringComparison.Ordinal), $"{node} to reload the list");
        }

        const int perNode = 12;
        string run = Guid.NewGuid().ToString("N")[..6];
        var results = new ConcurrentBag<Submission>();
        var down = new TaskCompletionSource();
        var up = new TaskCompletionSource();
        int sent = 0;

        async Task SendToAsync(Node node)
        {
            for (int i = 0; i < perNode; i++)
            {
                string subject = $"pg-{run}-{node.Name}-{i}";
                results.Add(await SubmitAsync(node, world["dave"].Address, ListWorld.Crypto, subject, Smime.Message(world["dave"].Address, ListWorld.Crypto, subject, cms)));
                int n = Interlocked.Increment(ref sent);
                if (n == perNode / 2)
                {
                    await down.Task;
                }
                else if (n == perNode)
                {
                    await up.Task;
                }
            }
        }

        Task[] senders = [SendToAsync(world.A), SendToAsync(world.B)];
        await UntilAsync(() => Task.FromResult(Volatile.Read(ref sent) >= perNode / 2), "the first part of the load to finish");
        await world.Database.StopAsync();
        down.SetResult();
        Submission coldA, coldB;
        try
        {
            // The cold list needs the directory: 451 4.3.0 from both nodes (never 550, never accepted).
            coldA = await SubmitAsync(world.A, world["dave"].Address, cold, "cold list", coldPost);
            coldB = await SubmitAsync(world.B, world["dave"].Address, cold, "cold list", coldPost);
            await UntilAsync(() => Task.FromResult(Volatile.Read(ref sent) >= perNode), "the load to finish while the database is down");
        }
        finally
        {
            await world.Database.StartAsync();
            up.SetResult();
        }

        await Task.WhenAll(senders);
        Assert.Equal((Outcome.Tempfailed, Outcome.Tempfailed), (coldA.Outcome, coldB.Outcome));
        Assert.Equal("451 4.3.0 list directory temporarily unavailable, try again later", coldA.Reply);
        Assert.Equal("451 4.3.0 list directory temporarily unavailable, try again later", coldB.Reply);

        // Without a daemon restart, both nodes use the server again: the kept cold post goes through now.
        foreach (Node node in new[] { world.A, world.B })
        {
            Submission retry = await SubmitAsync(node, world["dave"].Address, cold, "cold list", coldPost);
            Assert.True(retry.Outcome == Outcome.Queued, retry.ToString());
        }

        Submission[] all = [.. results];
        Assert.Equal(2 * perNode, all.Length);
        Assert.DoesNotContain(all, s => s.Outcome == Outcome.Refused);
        output.WriteLine($"load during the restart: {all.Count(s => s.Outcome == Outcome.Queued)} queued (expansions the nodes had cached), {all.Count(s => s.Outcome != Outcome.Queued)} tempfailed");
        foreach (Submission s in all.Where(s => s.Outcome != Outcome.Queued))
        {
            Assert.StartsWith("4", s.Reply, StringComparison.Ordinal);
            Submission retry = await SubmitAsync(s.Node, world["dave"].Address, ListWorld.Crypto, s.Subject, Smime.Message(world["dave"].Address, ListWorld.Crypto, s.Subject, cms));
            Assert.True(retry.Outcome == Outcome.Queued, retry.ToString());
        }

        await AccountForEveryMessageAsync([.. all.Select(s => s.Subject)]);
        IReadOnlyList<SinkMessage> coldDelivered = await DeliveredAsync(null, "cold list", transactions: 2);
        Assert.Equal(2, coldDelivered.Count);
        Assert.All(coldDelivered, m => Assert.Equal(new[] { world["alice"].Address, world["carol"].Address }.Order(), m.Recipients.Select(Addr).Order()));
    }

    // ---- helpers -----------------------------------------------------------------------------------------

    /// <summary>One CMS blob encrypted to the crypto list (openssl); each message wraps it with its own headers.</summary>
    private async Task<byte[]> CryptoCmsAsync()
    {
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Crypto, "template", Smime.Entity("two nodes"), [world.ListCert(ListWorld.Crypto)], "-aes256");
        return Smime.CmsOf(await File.ReadAllTextAsync(post));
    }

    /// <summary>Posts through node B until a delivery's recipients satisfy WANTED; returns how long that took.</summary>
    private async Task<TimeSpan> UntilNodeBDeliversAsync(byte[] cms, string what, Func<IReadOnlyList<string>, bool> wanted)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int attempts = 0;
        IReadOnlyList<string> last = [];
        await Poll.UntilAsync(
            async () =>
            {
                attempts++;
                string subject = $"{what} {Guid.NewGuid():N}";
                Submission s = await SubmitAsync(world.B, world["dave"].Address, ListWorld.Crypto, subject, Smime.Message(world["dave"].Address, ListWorld.Crypto, subject, cms));
                Assert.True(s.Outcome == Outcome.Queued, s.ToString());
                last = Assert.Single(await DeliveredAsync(world.B, subject)).Recipients;
                return wanted([.. last.Select(Addr)]);
            },
            $"{what}: node B to re-key for the new member set",
            TimeSpan.FromSeconds(60),
            TimeSpan.Zero,
            () => $"still the old set after {attempts} posts; recipients {string.Join(", ", last)}");
        return clock.Elapsed;
    }

    /// <summary>
    /// Every subject reached the sinks exactly once per member of the crypto list, re-keyed (the milter's trace
    /// header), and never as the list address itself; both queues end empty.
    /// </summary>
    private async Task AccountForEveryMessageAsync(IReadOnlyList<string> subjects)
    {
        string[] members = [.. CryptoMembers.Select(n => world[n].Address).Order()];
        string[] missing = [];
        // Both queues empty is the positive signal that smtp-sink answered (and so closed the file of) every delivery.
        await Poll.UntilAsync(
            () =>
            {
                SinkMessage[] sunk = [.. world.A.Postfix.ReadSinkMessages(), .. world.B.Postfix.ReadSinkMessages()];
                missing = [.. subjects.Where(subject => !sunk.Any(m => ListWorld.HasSubject(m, subject)))];
                return missing.Length == 0 && world.A.Postfix.QueuedCount() == 0 && world.B.Postfix.QueuedCount() == 0;
            },
            "every accepted message delivered and both queues empty",
            TimeSpan.FromSeconds(120),
            TimeSpan.FromMilliseconds(200),
            () => $"{missing.Length} accepted message(s) never delivered, e.g. {missing.FirstOrDefault()}; queued A {world.A.Postfix.QueuedCount()}, B {world.B.Postfix.QueuedCount()}\nmaillog B:\n{ListWorld.Tail(world.B.Postfix.ReadMailLog(), 10)}");

        SinkMessage[] all = [.. world.A.Postfix.ReadSinkMessages(), .. world.B.Postfix.ReadSinkMessages()];
        Assert.DoesNotContain(all, m => m.Recipients.Any(r => Addr(r).Equals(ListWorld.Crypto, StringComparison.OrdinalIgnoreCase)));
        foreach (string subject in subjects)
        {
            SinkMessage[] copies = [.. all.Where(m => ListWorld.HasSubject(m, subject))];
            Assert.Equal(members, copies.SelectMany(m => m.Recipients).Select(Addr).Order()); // each member exactly once
            Assert.All(copies, m => Assert.Contains("X-SecureList: 5 members re-keyed for " + ListWorld.Crypto, m.Headers, StringComparison.Ordinal));
        }

        SinkMessage sample = all.First(m => ListWorld.HasSubject(m, subjects[^1]));
        Assert.Equal(Smime.Entity("two nodes"), await world.OpensslDecryptAsync(sample, world["bob"]));
    }

    /// <summary>
    /// Sink messages with SUBJECT on NODE (both nodes when null): waits for the first TRANSACTIONS of them, then until
    /// Postfix has finished with the messages they came from, so that every copy there will be is there.
    /// </summary>
    private async Task<IReadOnlyList<SinkMessage>> DeliveredAsync(Node? node, string subject, int transactions = 1)
    {
        PostfixInstance[] instances = node is null ? [world.A.Postfix, world.B.Postfix] : [node.Postfix];
        // An empty queue means every delivery, split copies included, was answered by smtp-sink, which closes its file first.
        return await Poll.ForAsync(
            () => Read(instances, subject) is { } hits && hits.Count >= transactions && instances.All(p => p.QueuedCount() == 0) ? hits : null,
            $"{transactions} transaction(s) with Subject {subject} at smtp-sink and the queue empty",
            TimeSpan.FromSeconds(60),
            TimeSpan.FromMilliseconds(100),
            () => string.Join("; ", instances.Select(p => $"{p.QueuedCount()} queued")));
    }

    private static List<SinkMessage> Read(PostfixInstance[] instances, string subject)
    {
        var hits = new List<SinkMessage>();
        foreach (PostfixInstance p in instances)
        {
            try
            {
                hits.AddRange(p.ReadSinkMessages().Where(m => ListWorld.HasSubject(m, subject)));
            }
            catch (IOException)
            {
                // smtp-sink is still writing the file; the next round reads it.
            }
        }

        return hits;
    }

    private static Task UntilAsync(Func<Task<bool>> condition, string awaited) =>
        Poll.UntilAsync(condition, awaited, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));

    /// <summary>MAIL and RCPT only (nothing is queued): the reply to RCPT.</summary>
    private static async Task<string> RcptReplyAsync(Node node, string from, string rcpt)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", node.Postfix.SmtpPort);
        var smtp = new SmtpLines(client.GetStream());
        await smtp.ReplyAsync();
        await smtp.CommandAsync("EHLO client.e2e.test");
        await smtp.CommandAsync($"MAIL FROM:<{from}>");
        string reply = await smtp.CommandAsync($"RCPT TO:<{rcpt}>");
        await smtp.CommandAsync("QUIT");
        return reply;
    }

    /// <summary>One SMTP session, one message; every answer is an outcome, never an exception.</summary>
    private async Task<Submission> SubmitAsync(Node node, string from, string rcpt, string subject, byte[] message)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", node.Postfix.SmtpPort);
            client.ReceiveTimeout = 120_000;
            var smtp = new SmtpLines(client.GetStream());
            string reply = await smtp.ReplyAsync();
            foreach (string command in new[] { "EHLO client.e2e.test", $"MAIL FROM:<{from}>", $"RCPT TO:<{rcpt}>", "DATA" })
            {
                if (reply[0] != '2' && reply[0] != '3')
                {
                    break;
                }

                reply = await smtp.CommandAsync(command);
            }

            if (reply.StartsWith("354", StringComparison.Ordinal))
            {
                await smtp.WriteAsync(DotStuff(message));
                reply = await smtp.CommandAsync(".");
            }

            try
            {
                await smtp.CommandAsync("QUIT");
            }
            catch (IOException)
            {
            }

            Outcome outcome = reply[0] switch
            {
                '2' => Outcome.Queued,
                '4' => Outcome.Tempfailed,
                '5' => Outcome.Refused,
                _ => Outcome.NoAnswer,
            };
            return new Submission(subject, node, outcome, reply);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            return new Submission(subject, node, Outcome.NoAnswer, e.Message);
        }
    }

    private static byte[] DotStuff(byte[] message)
    {
        string text = Encoding.Latin1.GetString(message).ReplaceLineEndings("\r\n");
        var sb = new StringBuilder(text.Length + 16);
        foreach (string line in text.Split("\r\n").SkipLast(text.EndsWith("\r\n", StringComparison.Ordinal) ? 1 : 0))
        {
            sb.Append(line.StartsWith('.') ? "." + line : line).Append("\r\n");
        }

        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    /// <summary>SMTP replies as one line "CODE TEXT" (continuation lines joined).</summary>
    private sealed class SmtpLines(NetworkStream stream)
    {
        private readonly StreamReader _reader = new(stream, Encoding.Latin1);

        public async Task<string> ReplyAsync()
        {
            var text = new StringBuilder();
            string line;
            do
            {
                line = await _reader.ReadLineAsync() ?? throw new IOException("the server closed the connection");
                text.Append(text.Length == 0 ? line : " " + line[Math.Min(4, line.Length)..]);
            }
            while (line.Length > 3 && line[3] == '-');
            return text.ToString().Trim();
        }

        public async Task<string> CommandAsync(string command)
        {
            await WriteAsync(Encoding.Latin1.GetBytes(command + "\r\n"));
            return await ReplyAsync();
        }

        public async Task WriteAsync(byte[] bytes)
        {
            await stream.WriteAsync(bytes);
            await stream.FlushAsync();
        }
    }
}
