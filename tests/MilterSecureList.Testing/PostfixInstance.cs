using System.Net.Sockets;
using System.Text;

namespace MilterSecureList.Testing;

/// <summary>
/// One message as smtp-sink received it: the envelope (from its X-* dump lines), the header block and the body,
/// with line ends normalised to LF.
/// </summary>
public sealed record SinkMessage(string File, string MailFrom, IReadOnlyList<string> Recipients, string Headers, string Body)
{
    /// <summary>
    /// The queue id the relaying Postfix gave the message, from its own Received field ("(Postfix) with ESMTP id ID");
    /// null when no Postfix relayed it.
    /// </summary>
    public string? PostfixQueueId =>
        System.Text.RegularExpressions.Regex.Match(Headers, @"\(Postfix\)\s+with\s+\S+\s+id\s+([0-9A-Za-z]+)") is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>Parses one smtp-sink -d dump file.</summary>
    public static SinkMessage Parse(string file)
    {
        string text = System.IO.File.ReadAllText(file).ReplaceLineEndings("\n");
        var rcpts = new List<string>();
        string from = string.Empty;
        int pos = 0;
        while (pos < text.Length && text.AsSpan(pos).StartsWith("X-"))
        {
            int eol = text.IndexOf('\n', pos);
            if (eol < 0)
            {
                break; // a dump still being written
            }

            string line = text[pos..eol];
            if (line.StartsWith("X-Rcpt-Args: ", StringComparison.Ordinal))
            {
                rcpts.Add(line["X-Rcpt-Args: ".Length..].Split(' ')[0]);
            }
            else if (line.StartsWith("X-Mail-Args: ", StringComparison.Ordinal))
            {
                from = line["X-Mail-Args: ".Length..].Split(' ')[0];
            }

            pos = eol + 1;
        }

        // smtp-sink ends each dumped transaction with one extra newline: not part of the message.
        string message = text.EndsWith('\n') ? text[pos..^1] : text[pos..];
        int split = message.IndexOf("\n\n", StringComparison.Ordinal);
        return split < 0
            ? new SinkMessage(file, from, rcpts, message, string.Empty)
            : new SinkMessage(file, from, rcpts, message[..(split + 1)], message[(split + 2)..]);
    }
}

/// <summary>The result of one SMTP transaction: the reply to the final dot.</summary>
public sealed record SmtpResult(int Code, string Text);

/// <summary>
/// A throwaway Postfix 3.7 on loopback (docs/protocol.md §10.2): its own
/// config, queue, data directory and maillog under a temp directory; smtpd on a free 127.0.0.1 port; every
/// message relayed to an smtp-sink that dumps each transaction into <see cref="SinkDirectory"/>.
/// Needs root (Postfix's master drops privileges itself) and the Debian package postfix.
/// </summary>
public sealed class PostfixInstance : IAsyncDisposable
{
    private SmtpSink? _sink;
    private bool _started;

    private PostfixInstance(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string ConfigDirectory => Path.Combine(Directory, "etc");

    public string QueueDirectory => Path.Combine(Directory, "queue");

    public string MailLogPath => Path.Combine(Directory, "maillog");

    public string SinkDirectory => Path.Combine(Directory, "sink");

    public int SmtpPort { get; private set; }

    public int SinkPort => _sink?.Port ?? 0;

    /// <summary>
    /// Starts smtp-sink and Postfix. <paramref name="milterSocket"/> (inet:HOST:PORT or unix:/path, or null for
    /// none) goes into smtpd_milters. <paramref name="extraMainCf"/> lines ("key = value") are applied last, so
    /// they can override anything (virtual_alias_maps, transport_maps, milter_default_action, ...).
    /// </summary>
    public static async Task<PostfixInstance> StartAsync(string? milterSocket, IEnumerable<string>? extraMainCf = null)
    {
        ExternalTool.RequireRoot("a throwaway Postfix instance");
        string postfix = ExternalTool.Require("postfix", "postfix");
        string postconf = ExternalTool.Require("postconf", "postfix");
        ExternalTool.Require("smtp-sink", "postfix");

        string dir = System.IO.Directory.CreateTempSubdirectory("msl-postfix-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0x1ED); // 0755
        var instance = new PostfixInstance(dir);
        try
        {
            await instance.StartCoreAsync(postfix, postconf, milterSocket, extraMainCf ?? []).ConfigureAwait(false);
            return instance;
        }
        catch
        {
            await instance.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(string postfix, string postconf, string? milterSocket, IEnumerable<string> extraMainCf)
    {
        System.IO.Directory.CreateDirectory(ConfigDirectory);
        System.IO.Directory.CreateDirectory(QueueDirectory);
        string data = Path.Combine(Directory, "data");
        System.IO.Directory.CreateDirectory(data);
        await Chown("postfix", data).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(ConfigDirectory, "main.cf"), string.Empty).ConfigureAwait(false);
        SmtpPort = ExternalTool.FreeTcpPort();
        _sink = await SmtpSink.StartAsync(SinkDirectory).ConfigureAwait(false);

        string[] settings =
        [
            "compatibility_level = 3.6",
            $"queue_directory = {QueueDirectory}",
            $"data_directory = {data}",
            "command_directory = /usr/sbin",
            "daemon_directory = /usr/lib/postfix/sbin",
            "meta_directory = /etc/postfix",
            "shlib_directory = /usr/lib/postfix",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "syslog_name = postfix-msltest",
            $"maillog_file = {MailLogPath}",
            $"maillog_file_prefixes = {Directory}",
            "myhostname = mta.msl.test",
            "mydomain = msl.test",
            "mydestination =",
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "relay_domains =",
            $"relayhost = [127.0.0.1]:{SinkPort}",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "smtpd_relay_restrictions = permit_mynetworks, reject",
            "smtpd_peername_lookup = no",
            "smtp_dns_support_level = disabled",
            "smtp_tls_security_level = none",
            "smtpd_tls_security_level = none",
            "smtputf8_enable = no",
            "biff = no",
            "in_flow_delay = 0",
            "queue_minfree = 0",
            "notify_classes =",
            "milter_default_action = tempfail",
            "milter_protocol = 6",
            $"smtpd_milters = {milterSocket ?? string.Empty}",
            "queue_run_delay = 1s",
            "minimal_backoff_time = 1s",
            "maximal_backoff_time = 2s",
        ];
        (await ExternalTool.RunAsync(postconf, ["-c", ConfigDirectory, "-e", .. settings, .. extraMainCf]).ConfigureAwait(false)).EnsureSuccess();

        // master.cf: no chroot, smtpd only on our loopback port.
        await File.WriteAllTextAsync(Path.Combine(ConfigDirectory, "master.cf"), $"""
            127.0.0.1:{SmtpPort} inet n - n - - smtpd
            pickup     unix  n - n 60   1 pickup
            cleanup    unix  n - n -    0 cleanup
            qmgr       unix  n - n 300  1 qmgr
            rewrite    unix  - - n -    - trivial-rewrite
            bounce     unix  - - n -    0 bounce
            defer      unix  - - n -    0 bounce
            trace      unix  - - n -    0 bounce
            verify     unix  - - n -    1 verify
            flush      unix  n - n 1000? 0 flush
            proxymap   unix  - - n -    - proxymap
            proxywrite unix  - - n -    1 proxymap
            smtp       unix  - - n -    - smtp
            relay      unix  - - n -    - smtp
            showq      unix  n - n -    - showq
            error      unix  - - n -    - error
            retry      unix  - - n -    - error
            discard    unix  - - n -    - discard
            local      unix  - n n -    - local
            lmtp       unix  - - n -    - lmtp
            anvil      unix  - - n -    1 anvil
            scache     unix  - - n -    1 scache
            postlog    unix-dgram n - n - 1 postlogd

            """).ConfigureAwait(false);

        (await ExternalTool.RunAsync(postfix, ["-c", ConfigDirectory, "check"]).ConfigureAwait(false)).EnsureSuccess();
        _started = true;
        (await ExternalTool.RunAsync(postfix, ["-c", ConfigDirectory, "start"]).ConfigureAwait(false)).EnsureSuccess();
        await Poll.UntilAsync(() => Loopback.IsListeningAsync(SmtpPort), "Postfix smtpd to listen on port " + SmtpPort, evidence: () => "log: " + ReadMailLog()).ConfigureAwait(false);
    }

    /// <summary>Sends one message over SMTP (EHLO, MAIL, RCPT..., DATA); returns the reply to the final dot.</summary>
    public async Task<SmtpResult> SendAsync(string from, IEnumerable<string> recipients, byte[] message) =>
        (await SendManyAsync([(from, recipients, message)]).ConfigureAwait(false))[0];

    /// <summary>Sends several messages over ONE SMTP session (so the milter sees several messages on one connection).</summary>
    public async Task<IReadOnlyList<SmtpResult>> SendManyAsync(IEnumerable<(string From, IEnumerable<string> Recipients, byte[] Message)> messages)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", SmtpPort).ConfigureAwait(false);
        client.ReceiveTimeout = 60_000;
        NetworkStream stream = client.GetStream();
        var reader = new StreamReader(stream, Encoding.Latin1);
        async Task<SmtpResult> ReplyAsync()
        {
            string? line;
            var text = new StringBuilder();
            do
            {
                line = await reader.ReadLineAsync().ConfigureAwait(false) ?? throw new IOException("SMTP server closed the connection");
                text.Append(line.Length > 4 ? line[4..] : string.Empty).Append(' ');
            }
            while (line.Length > 3 && line[3] == '-');
            return new SmtpResult(int.Parse(line[..3], System.Globalization.CultureInfo.InvariantCulture), text.ToString().Trim());
        }

        async Task<SmtpResult> CommandAsync(string command)
        {
            await stream.WriteAsync(Encoding.Latin1.GetBytes(command + "\r\n")).ConfigureAwait(false);
            return await ReplyAsync().ConfigureAwait(false);
        }

        Expect(await ReplyAsync().ConfigureAwait(false), 220, "greeting");
        Expect(await CommandAsync("EHLO client.msl.test").ConfigureAwait(false), 250, "EHLO");
        var results = new List<SmtpResult>();
        foreach ((string from, IEnumerable<string> rcpts, byte[] message) in messages)
        {
            Expect(await CommandAsync($"MAIL FROM:<{from}>").ConfigureAwait(false), 250, "MAIL");
            foreach (string r in rcpts)
            {
                Expect(await CommandAsync($"RCPT TO:<{r}>").ConfigureAwait(false), 250, "RCPT");
            }

            Expect(await CommandAsync("DATA").ConfigureAwait(false), 354, "DATA");
            await stream.WriteAsync(DotStuff(message)).ConfigureAwait(false);
            results.Add(await CommandAsync(".").ConfigureAwait(false));
            if (results[^1].Code >= 400)
            {
                await CommandAsync("RSET").ConfigureAwait(false);
            }
        }

        await CommandAsync("QUIT").ConfigureAwait(false);
        return results;
    }

    /// <summary>
    /// Writes a lookup table into the instance's config directory and returns its Postfix name
    /// ("texthash:/path", no postmap needed), e.g. for virtual_alias_maps or transport_maps.
    /// </summary>
    public async Task<string> WriteMapAsync(string name, IEnumerable<(string Key, string Value)> entries)
    {
        string path = Path.Combine(ConfigDirectory, name);
        await File.WriteAllLinesAsync(path, entries.Select(e => e.Key + " " + e.Value)).ConfigureAwait(false);
        return "texthash:" + path;
    }

    /// <summary>Changes main.cf settings ("key = value") on the running instance and reloads it.</summary>
    public async Task ReconfigureAsync(params string[] mainCf)
    {
        (await ExternalTool.RunAsync("postconf", ["-c", ConfigDirectory, "-e", .. mainCf]).ConfigureAwait(false)).EnsureSuccess();
        await ReloadAsync().ConfigureAwait(false);
    }

    /// <summary>postfix reload: master re-reads main.cf and master.cf.</summary>
    public async Task ReloadAsync() =>
        (await ExternalTool.RunAsync("postfix", ["-c", ConfigDirectory, "reload"]).ConfigureAwait(false)).EnsureSuccess();

    /// <summary>Runs swaks against this instance (for tests that want a second, independent SMTP client).</summary>
    public Task<ToolResult> SwaksAsync(params string[] args) =>
        ExternalTool.RunAsync("swaks", ["--server", $"127.0.0.1:{SmtpPort}", .. args], TimeSpan.FromSeconds(120));

    /// <summary>Asks the queue manager to retry deferred mail now (postqueue -f).</summary>
    public async Task FlushQueueAsync() =>
        (await ExternalTool.RunAsync("postqueue", ["-c", ConfigDirectory, "-f"]).ConfigureAwait(false)).EnsureSuccess();

    private static readonly string[] s_queues = ["maildrop", "incoming", "active", "deferred", "hold"];

    /// <summary>Files in the queue (incoming, active, deferred, hold, maildrop).</summary>
    public int QueuedCount() => s_queues
        .Select(d => Path.Combine(QueueDirectory, d))
        .Where(System.IO.Directory.Exists)
        .Sum(d => System.IO.Directory.GetFiles(d, "*", SearchOption.AllDirectories).Length);

    /// <summary>The queue file of <paramref name="queueId"/> is in one of the queues (whichever it is in right now).</summary>
    public bool IsQueued(string queueId) => s_queues
        .Select(d => Path.Combine(QueueDirectory, d))
        .Where(System.IO.Directory.Exists)
        .Any(d => System.IO.Directory.EnumerateFiles(d, queueId, SearchOption.AllDirectories).Any());

    /// <summary>Waits until the queue is empty (bounded); throws with the log tail on timeout.</summary>
    public Task WaitForQueueEmptyAsync(TimeSpan timeout) =>
        Poll.UntilAsync(() => QueuedCount() == 0, "an empty Postfix queue", timeout, evidence: () => $"{QueuedCount()} message(s) still queued; log tail: {Tail(ReadMailLog(), 10)}");

    /// <summary>
    /// Waits until Postfix has finished with the message <paramref name="queueId"/>: every delivery of it is done
    /// (its queue file goes only after the last recipient), so no further copy of it can reach smtp-sink.
    /// </summary>
    public Task WaitForDoneAsync(string queueId, TimeSpan timeout) =>
        Poll.UntilAsync(() => !IsQueued(queueId), $"Postfix to finish with {queueId}", timeout, evidence: () => "log tail: " + Tail(ReadMailLog(), 10));

    /// <summary>
    /// Waits until Postfix has finished with every message these smtp-sink copies came from (by the queue id in
    /// Postfix's Received field): after that no further copy of those messages can arrive.
    /// </summary>
    public async Task WaitForDoneAsync(IEnumerable<SinkMessage> copies, TimeSpan timeout)
    {
        foreach (SinkMessage copy in copies.DistinctBy(c => c.PostfixQueueId))
        {
            string queueId = copy.PostfixQueueId ?? throw new InvalidOperationException($"{copy.File} has no Received field from Postfix:\n{copy.Headers}");
            await WaitForDoneAsync(queueId, timeout).ConfigureAwait(false);
        }
    }

    /// <summary>Messages smtp-sink received so far.</summary>
    public IReadOnlyList<SinkMessage> ReadSinkMessages() => _sink?.ReadMessages() ?? [];

    /// <summary>
    /// Waits (bounded) until smtp-sink holds at least <paramref name="count"/> messages and the queue is empty: every
    /// delivery was then answered 250, and smtp-sink closes each dump before it answers.
    /// </summary>
    public Task<IReadOnlyList<SinkMessage>> WaitForSinkMessagesAsync(int count, TimeSpan timeout)
    {
        int seen = 0;
        return Poll.ForAsync(
            () =>
            {
                if (QueuedCount() > 0)
                {
                    return null;
                }

                IReadOnlyList<SinkMessage> got;
                try
                {
                    got = ReadSinkMessages();
                }
                catch (IOException)
                {
                    return null; // a transaction of another test began meanwhile; the next round reads it whole
                }

                seen = got.Count;
                return got.Count >= count ? got : null;
            },
            $"{count} message(s) at smtp-sink",
            timeout,
            evidence: () => $"smtp-sink has {seen}; {QueuedCount()} queued; log tail: {Tail(ReadMailLog(), 10)}");
    }

    public string ReadMailLog()
    {
        try
        {
            using var fs = new FileStream(MailLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return new StreamReader(fs).ReadToEnd();
        }
        catch (FileNotFoundException)
        {
            return string.Empty;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_started)
        {
            try
            {
                await ExternalTool.RunAsync("postfix", ["-c", ConfigDirectory, "stop"], TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }

            // If master is still there, end it by the pid in OUR queue directory (never by name).
            string pidFile = Path.Combine(QueueDirectory, "pid", "master.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid))
            {
                try
                {
                    await Poll.UntilAsync(() => !ProcessAlive(pid), "Postfix master to exit", TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    ExternalTool.Signal(pid, "KILL");
                }
            }
        }

        if (_sink is not null)
        {
            await _sink.DisposeAsync().ConfigureAwait(false);
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static bool ProcessAlive(int pid) => File.Exists($"/proc/{pid}/status");

    private static void Expect(SmtpResult r, int code, string step)
    {
        if (r.Code != code)
        {
            throw new InvalidOperationException($"SMTP {step}: expected {code}, got {r.Code} {r.Text}");
        }
    }

    private static byte[] DotStuff(byte[] message)
    {
        string text = Encoding.Latin1.GetString(message).ReplaceLineEndings("\r\n");
        if (!text.EndsWith("\r\n", StringComparison.Ordinal))
        {
            text += "\r\n";
        }

        var sb = new StringBuilder(text.Length + 16);
        foreach (string line in text[..^2].Split("\r\n"))
        {
            sb.Append(line.StartsWith('.') ? "." + line : line).Append("\r\n");
        }

        return Encoding.Latin1.GetBytes(sb.ToString());
    }

    private static async Task Chown(string user, string path) =>
        (await ExternalTool.RunAsync("chown", [user, path]).ConfigureAwait(false)).EnsureSuccess();

    private static string Tail(string s, int lines) => string.Join('\n', s.Split('\n').TakeLast(lines));
}
