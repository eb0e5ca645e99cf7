using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MilterSecureList.Directory;
using MilterSecureList.Daemon.Logging;
using MilterSecureList.Filter;
using MimeKit;
using MimeKit.Text;

namespace MilterSecureList.Daemon.Notices;

/// <summary>
/// The daemon's <see cref="IOwnerNotifier"/>: submits notices over SMTP (MailKit's <see cref="SmtpClient"/>) to the local MTA, off the message path: the end-of-message reply never waits for
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
        NoticeLog.MemberSkipped(_logger, list.Address, member, problem);
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
                    NoticeLog.NoticeSent(_logger, list.Owner!, list.Address, items.Count);
                }
                catch (Exception e) when (NoticeMail.IsSendFailure(e))
                {
                    NoticeLog.NoticeFailed(_logger, list.Owner!, list.Address, e.Message);
                }
            }
        }
    }

    private Task SendAsync(MailingList list, List<(string Member, string Problem)> items) =>
        NoticeMail.SendAsync(_options, Compose(list, items), list.Owner!);

    private MimeMessage Compose(MailingList list, List<(string Member, string Problem)> items)
    {
        var body = new StringBuilder();
        body.Append("The following members of ").Append(list.Address)
            .Append(" did not receive a post because they have no usable S/MIME certificate:\n\n");
        foreach ((string member, string problem) in items)
        {
            body.Append("  ").Append(member).Append(": ").Append(problem).Append('\n');
        }

        body.Append("\nUpdate their certificates with: securelist member add ").Append(list.Address)
            .Append(" ADDRESS --cert FILE\n");
        var message = new MimeMessage
        {
            Subject = $"[{list.Address}] members skipped: no usable certificate",
            Date = _time.GetUtcNow(),
            Body = new TextPart(TextFormat.Plain) { Text = body.ToString() },
        };
        message.From.Add(MailboxAddress.Parse(_options.From));
        message.To.Add(MailboxAddress.Parse(list.Owner!));
        message.Headers.Add("Auto-Submitted", "auto-generated"); // RFC 3834 §5
        return message;
    }
}
