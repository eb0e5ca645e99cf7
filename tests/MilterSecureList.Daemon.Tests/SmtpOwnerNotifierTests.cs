using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Notices;
using MilterSecureList.Directory;
using MilterSecureList.Testing;

namespace MilterSecureList.Daemon.Tests;

/// <summary>The owner notices go out through MailKit to a real SMTP peer: Postfix's smtp-sink on loopback, which dumps
/// every transaction (envelope included) into a temp directory.</summary>
public sealed class SmtpOwnerNotifierTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("notices-").FullName;
    private Process? _sink;
    private int _port;

    private string SinkDirectory => Path.Combine(_dir, "sink");

    public async Task InitializeAsync()
    {
        string sink = ExternalTool.Require("smtp-sink", "postfix");
        System.IO.Directory.CreateDirectory(SinkDirectory);
        // smtp-sink writes its dumps as the postfix user: it must get through the (0700) temp dir into a dir it may write.
        File.SetUnixFileMode(_dir, (UnixFileMode)0x1ED); // 0755
        File.SetUnixFileMode(SinkDirectory, (UnixFileMode)0x1FF); // 0777
        _port = ExternalTool.FreeTcpPort();
        var psi = new ProcessStartInfo(sink) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-u", "postfix", "-d", Path.Combine(SinkDirectory, "%Y%m%d%H%M%S."), $"127.0.0.1:{_port}", "16" })
        {
            psi.ArgumentList.Add(a);
        }

        _sink = Process.Start(psi) ?? throw new InvalidOperationException("cannot start smtp-sink");
        DateTime end = DateTime.UtcNow + Deadline;
        while (!await CanConnectAsync(_port))
        {
            Assert.True(DateTime.UtcNow < end, "smtp-sink does not listen");
            await Task.Delay(50);
        }
    }

    public async Task DisposeAsync()
    {
        if (_sink is { HasExited: false })
        {
            _sink.Kill();
            await _sink.WaitForExitAsync();
        }

        _sink?.Dispose();
        System.IO.Directory.Delete(_dir, recursive: true);
    }

    private static MailingList List(string owner) =>
        new("crypto@lists.example.org", ListMode.Rekey, owner, PostingPolicy.Open, MailingList.NoOptions);

    private static async Task<bool> CanConnectAsync(int port)
    {
        try
        {
            using var client = new System.Net.Sockets.TcpClient();
            await client.ConnectAsync("127.0.0.1", port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    private async Task<IReadOnlyList<SinkMessage>> WaitForMessagesAsync(int count, RecordingLogger logger)
    {
        DateTime end = DateTime.UtcNow + Deadline;
        while (true)
        {
            // smtp-sink writes a dump when the transaction ends: a file may be there but not complete until QUIT.
            var messages = System.IO.Directory.GetFiles(SinkDirectory, "*", SearchOption.AllDirectories)
                .Select(SinkMessage.Parse).Where(m => m.Body.Length > 0).ToList();
            if (messages.Count >= count)
            {
                return messages;
            }

            Assert.True(DateTime.UtcNow < end, $"smtp-sink got {messages.Count} message(s), expected {count}; log: {string.Join(" | ", logger.Lines)}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task SkippedMembersOfOnePostBecomeOneNoticeFromTheNullSender()
    {
        var logger = new RecordingLogger();
        await using (var notifier = new SmtpOwnerNotifier(
            new NoticeOptions { SmtpServer = $"127.0.0.1:{_port}", From = "SecureList <securelist@lists.example.org>" }, logger))
        {
            notifier.MemberSkipped(List("owner@example.org"), "erin@example.org", "certificate expired on 2026-01-01");
            notifier.MemberSkipped(List("owner@example.org"), "frank@example.org", "no certificate");
            SinkMessage notice = Assert.Single(await WaitForMessagesAsync(1, logger));

            Assert.Equal("<>", notice.MailFrom.Replace("MAIL FROM:", string.Empty, StringComparison.OrdinalIgnoreCase));
            Assert.Equal(["<owner@example.org>"], notice.Recipients.Select(r => r.Replace("RCPT TO:", string.Empty, StringComparison.OrdinalIgnoreCase)));
            Assert.Contains("Subject: [crypto@lists.example.org] members skipped: no usable certificate\n", notice.Headers, StringComparison.Ordinal);
            Assert.Contains("From: SecureList <securelist@lists.example.org>\n", notice.Headers, StringComparison.Ordinal);
            Assert.Contains("To: owner@example.org\n", notice.Headers, StringComparison.Ordinal);
            Assert.Contains("Auto-Submitted: auto-generated\n", notice.Headers, StringComparison.Ordinal);
            Assert.Contains("  erin@example.org: certificate expired on 2026-01-01\n", notice.Body, StringComparison.Ordinal);
            Assert.Contains("  frank@example.org: no certificate\n", notice.Body, StringComparison.Ordinal);
            Assert.Contains("securelist member add crypto@lists.example.org ADDRESS --cert FILE", notice.Body, StringComparison.Ordinal);
        }

        Assert.Contains(logger.Lines, l => l.Contains("notice sent to owner@example.org about 2 skipped member(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AServerThatDoesNotAnswerIsLoggedAndNothingElseHappens()
    {
        var logger = new RecordingLogger();
        int closed = ExternalTool.FreeTcpPort();
        await using (var notifier = new SmtpOwnerNotifier(new NoticeOptions { SmtpServer = $"127.0.0.1:{closed}" }, logger))
        {
            notifier.MemberSkipped(List("owner@example.org"), "erin@example.org", "no certificate");
            DateTime end = DateTime.UtcNow + Deadline;
            while (!logger.Lines.Any(l => l.Contains("owner@example.org", StringComparison.Ordinal) && !l.Contains("skipped erin", StringComparison.Ordinal) && l.StartsWith("Warning", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < end, "no failure logged: " + string.Join(" | ", logger.Lines));
                await Task.Delay(50);
            }
        }
    }

    [Fact]
    public async Task AnOwnerAddressMailKitCannotParseIsLoggedNotThrown()
    {
        var logger = new RecordingLogger();
        await using (var notifier = new SmtpOwnerNotifier(new NoticeOptions { SmtpServer = $"127.0.0.1:{_port}" }, logger))
        {
            notifier.MemberSkipped(List("owner@@bad"), "erin@example.org", "no certificate");
            DateTime end = DateTime.UtcNow + Deadline;
            while (!logger.Lines.Any(l => l.Contains("owner@@bad", StringComparison.Ordinal) && l.StartsWith("Warning", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < end, "no failure logged: " + string.Join(" | ", logger.Lines));
                await Task.Delay(50);
            }
        }
    }

    /// <summary>Keeps each log line as "Level: message".</summary>
    private sealed class RecordingLogger : ILogger
    {
        private readonly List<string> _lines = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines)
            {
                _lines.Add($"{logLevel}: {formatter(state, exception)}");
            }
        }
    }
}
