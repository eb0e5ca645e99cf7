using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Notices;
using MilterSecureList.Filter;
using MilterSecureList.Gateway;
using MimeKit;
using MimeKit.Text;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>
/// Mails a gateway user when a correspondent's certificate changed and the new one waits for an operator
/// (docs/gateway.md, Pinning), through the local MTA at [Notices] SmtpServer, off the message path. Each pending
/// certificate is reported to each user once per daemon run; with [Notices] Enabled = no only the log line remains.
/// </summary>
public sealed class GatewayNoticeMailer : IGatewayNotifier, IAsyncDisposable
{
    private readonly NoticeOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<PendingCertificateChange> _queue =
        Channel.CreateBounded<PendingCertificateChange>(new BoundedChannelOptions(1_000) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly HashSet<string> _sent = new(StringComparer.OrdinalIgnoreCase);
    private readonly Task _worker;

    public GatewayNoticeMailer(NoticeOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _worker = Task.Run(RunAsync);
    }

    public void CertificateChangePending(PendingCertificateChange change)
    {
        if (!_options.Enabled)
        {
            return;
        }

        lock (_sent)
        {
            if (!_sent.Add($"{change.User}\n{change.Correspondent}\n{change.NewFingerprint}"))
            {
                return;
            }
        }

        _queue.Writer.TryWrite(change);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        await foreach (PendingCertificateChange change in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await NoticeMail.SendAsync(_options, Compose(change), change.User).ConfigureAwait(false);
                GatewayLog.NoticeSent(_logger, change.User, change.Correspondent, change.NewFingerprint);
            }
            catch (Exception e) when (NoticeMail.IsSendFailure(e))
            {
                GatewayLog.NoticeFailed(_logger, change.User, change.Correspondent, e.Message);
            }
        }
    }

    private MimeMessage Compose(PendingCertificateChange change)
    {
        var body = new StringBuilder()
            .Append(change.Correspondent).Append(" signed a message to you with a certificate the gateway has not seen before:\n\n")
            .Append("  new certificate (SHA-256): ").Append(change.NewFingerprint).Append('\n')
            .Append("  certificate in use:        ").Append(change.PinnedFingerprint ?? "(none valid)").Append("\n\n")
            .Append("The signature itself was valid, but the gateway keeps encrypting your mail to ").Append(change.Correspondent)
            .Append(" with the certificate in use until an operator accepts the new one. If you did not expect ")
            .Append(change.Correspondent).Append(" to have a new certificate, tell your mail administrator before they accept it.\n\n")
            .Append("Operator: securelist cert ls ").Append(change.Correspondent).Append(" --pending; securelist cert accept ")
            .Append(change.Correspondent).Append(" --fingerprint ").Append(change.NewFingerprint).Append('\n');
        var message = new MimeMessage
        {
            Subject = $"Certificate change for {change.Correspondent} waits for approval",
            Date = DateTimeOffset.UtcNow,
            Body = new TextPart(TextFormat.Plain) { Text = body.ToString() },
        };
        message.From.Add(MailboxAddress.Parse(_options.From));
        message.To.Add(MailboxAddress.Parse(change.User));
        message.Headers.Add("Auto-Submitted", "auto-generated"); // RFC 3834 §5
        return message;
    }
}
