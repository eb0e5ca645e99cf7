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
    private SmtpSink _sink = null!;

    public async Task InitializeAsync()
    {
        // smtp-sink writes its dumps as the postfix user: it must get through the (0700) temp dir.
        File.SetUnixFileMode(_dir, (UnixFileMode)0x1ED); // 0755
        _sink = await SmtpSink.StartAsync(Path.Combine(_dir, "sink"), backlog: 16);
    }

    public async Task DisposeAsync()
    {
        if (_sink is not null)
        {
            await _sink.DisposeAsync();
        }

        System.IO.Directory.Delete(_dir, recursive: true);
    }

    private static MailingList List(string owner) =>
        new("crypto@lists.example.org", ListMode.Rekey, owner, PostingPolicy.Open, MailingList.NoOptions);

    /// <summary>
    /// Waits for COUNT notices at smtp-sink. Its dump of a transaction is complete once the notifier logs that
    /// smtp-sink accepted it (the dump is closed before the 250), so the log line is the signal, not the file.
    /// </summary>
    private async Task<IReadOnlyList<SinkMessage>> WaitForMessagesAsync(int count, RecordingLogger logger)
    {
        await Poll.UntilAsync(
            () => logger.Lines.Count(l => l.Contains("notice sent to", StringComparison.Ordinal)) >= count,
            $"{count} notice(s) sent",
            Deadline,
            evidence: () => "log: " + string.Join(" | ", logger.Lines));
        return _sink.ReadMessages();
    }

    [Fact]
    public async Task SkippedMembersOfOnePostBecomeOneNoticeFromTheNullSender()
    {
        var logger = new RecordingLogger();
        await using (var notifier = new SmtpOwnerNotifier(
            new NoticeOptions { SmtpServer = $"127.0.0.1:{_sink.Port}", From = "SecureList <securelist@lists.example.org>" }, logger))
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
            await Poll.UntilAsync(
                () => logger.Lines.Any(l => l.Contains("owner@example.org", StringComparison.Ordinal) && !l.Contains("skipped erin", StringComparison.Ordinal) && l.StartsWith("Warning", StringComparison.Ordinal)),
                "the failure to be logged",
                Deadline,
                evidence: () => string.Join(" | ", logger.Lines));
        }
    }

    [Fact]
    public async Task AnOwnerAddressMailKitCannotParseIsLoggedNotThrown()
    {
        var logger = new RecordingLogger();
        await using (var notifier = new SmtpOwnerNotifier(new NoticeOptions { SmtpServer = $"127.0.0.1:{_sink.Port}" }, logger))
        {
            notifier.MemberSkipped(List("owner@@bad"), "erin@example.org", "no certificate");
            await Poll.UntilAsync(
                () => logger.Lines.Any(l => l.Contains("owner@@bad", StringComparison.Ordinal) && l.StartsWith("Warning", StringComparison.Ordinal)),
                "the failure to be logged",
                Deadline,
                evidence: () => string.Join(" | ", logger.Lines));
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
