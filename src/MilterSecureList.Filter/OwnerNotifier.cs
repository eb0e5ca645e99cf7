using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MilterSecureList.Directory;

namespace MilterSecureList.Filter;

/// <summary>Tells a list owner that members were left out of a post (policy <c>MissingCertificate = skip</c>).</summary>
public interface IOwnerNotifier
{
    void MemberSkipped(MailingList list, string member, string problem);
}

/// <summary>For <c>securelist check</c> and tests: remembers, sends nothing.</summary>
public sealed class RecordingOwnerNotifier : IOwnerNotifier
{
    public List<(string List, string Member, string Problem)> Notices { get; } = [];

    public void MemberSkipped(MailingList list, string member, string problem)
    {
        lock (Notices)
        {
            Notices.Add((list.Address, member, problem));
        }
    }
}

/// <summary>
/// Submits notices over SMTP to the local MTA, off the message path: the end-of-message reply never waits for
/// a notice. Notices for one list are gathered for a moment so one post gives one notice, and each
/// (list, member) pair is reported at most once per <see cref="NoticeOptions.RepeatHours"/>. The envelope
/// sender is &lt;&gt;, so a notice cannot bounce back or loop into a list.
/// </summary>
public sealed class SmtpOwnerNotifier : IOwnerNotifier, IAsyncDisposable
{
    private static readonly TimeSpan s_gather = TimeSpan.FromSeconds(1);

    private readonly NoticeOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<(MailingList List, string Member, string Problem)> _queue =
        Channel.CreateBounded<(MailingList, string, string)>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Dictionary<string, DateTimeOffset> _lastSent = new(StringComparer.OrdinalIgnoreCase);
    private readonly Task _worker;

    public SmtpOwnerNotifier(NoticeOptions options, ILogger logger, TimeProvider? time = null)
    {
        _options = options;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _worker = Task.Run(RunAsync);
    }

    public void MemberSkipped(MailingList list, string member, string problem)
    {
        FilterLog.MemberSkipped(_logger, list.Address, member, problem);
        if (_options.Enabled && !string.IsNullOrEmpty(list.Owner))
        {
            _queue.Writer.TryWrite((list, member, problem));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            await Task.Delay(s_gather, _time).ConfigureAwait(false);
            var byList = new Dictionary<string, (MailingList List, List<(string Member, string Problem)> Items)>(StringComparer.OrdinalIgnoreCase);
            DateTimeOffset now = _time.GetUtcNow();
            while (_queue.Reader.TryRead(out var item))
            {
                string key = item.List.Address + "\n" + item.Member;
                if (_lastSent.TryGetValue(key, out DateTimeOffset last) && now - last < TimeSpan.FromHours(_options.RepeatHours))
                {
                    continue;
                }

                _lastSent[key] = now;
                if (!byList.TryGetValue(item.List.Address, out var entry))
                {
                    entry = (item.List, []);
                    byList[item.List.Address] = entry;
                }

                entry.Items.Add((item.Member, item.Problem));
            }

            foreach ((MailingList list, List<(string Member, string Problem)> items) in byList.Values)
            {
                try
                {
                    await SendAsync(list, items).ConfigureAwait(false);
                    FilterLog.NoticeSent(_logger, list.Owner!, list.Address, items.Count);
                }
                catch (Exception e) when (e is IOException or SocketException or InvalidOperationException or TimeoutException)
                {
                    FilterLog.NoticeFailed(_logger, list.Owner!, list.Address, e.Message);
                }
            }
        }
    }

    private async Task SendAsync(MailingList list, List<(string Member, string Problem)> items)
    {
        if (!NoticeOptions.TryParseHostPort(_options.SmtpServer, out string host, out int port))
        {
            throw new InvalidOperationException($"[Notices] SmtpServer '{_options.SmtpServer}' is not HOST:PORT");
        }

        var body = new StringBuilder();
        body.Append("The following members of ").Append(list.Address)
            .Append(" did not receive a post because they have no usable S/MIME certificate:\r\n\r\n");
        foreach ((string member, string problem) in items)
        {
            body.Append("  ").Append(member).Append(": ").Append(problem).Append("\r\n");
        }

        body.Append("\r\nUpdate their certificates with: securelist member add ").Append(list.Address)
            .Append(" ADDRESS --cert FILE\r\n");
        string message =
            $"From: {_options.From}\r\nTo: {list.Owner}\r\nSubject: [{list.Address}] members skipped: no usable certificate\r\n" +
            $"Date: {_time.GetUtcNow():R}\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n" +
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body;

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new TcpClient();
        await client.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
        await using NetworkStream stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\r\n", AutoFlush = true };

        await ExpectAsync(reader, 220, cts.Token).ConfigureAwait(false);
        foreach ((string command, int expect) in new[]
        {
            ("EHLO securelist", 250), ("MAIL FROM:<>", 250), ($"RCPT TO:<{list.Owner}>", 250), ("DATA", 354),
        })
        {
            await writer.WriteLineAsync(command.AsMemory(), cts.Token).ConfigureAwait(false);
            await ExpectAsync(reader, expect, cts.Token).ConfigureAwait(false);
        }

        // Dot-stuffing (RFC 5321 §4.5.2): no line of ours starts with a dot except by member addresses, so stuff all.
        string stuffed = message.Replace("\r\n.", "\r\n..", StringComparison.Ordinal);
        await writer.WriteAsync((stuffed + "\r\n.\r\n").AsMemory(), cts.Token).ConfigureAwait(false);
        await ExpectAsync(reader, 250, cts.Token).ConfigureAwait(false);
        await writer.WriteLineAsync("QUIT".AsMemory(), cts.Token).ConfigureAwait(false);
    }

    private static async Task ExpectAsync(StreamReader reader, int code, CancellationToken ct)
    {
        while (true)
        {
            string line = await reader.ReadLineAsync(ct).ConfigureAwait(false) ?? throw new IOException("SMTP server closed the connection");
            if (line.Length >= 4 && line[3] == '-')
            {
                continue;
            }

            if (!line.StartsWith(code.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"SMTP server answered '{line}' (expected {code})");
            }

            return;
        }
    }
}
