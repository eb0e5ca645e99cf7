using MilterSecureList.Configuration;
using MailKit.Net.Smtp;
using MailKit.Security;
using MilterSecureList.Filter;
using MimeKit;

namespace MilterSecureList.Daemon.Notices;

/// <summary>
/// Submits copies over one plain SMTP session (MailKit's <see cref="SmtpClient"/>) to the local MTA, one
/// transaction per copy: the 250 after DATA means the copy sits in Postfix's queue.
/// </summary>
public sealed class SmtpCopySubmitter : ICopySubmitter
{
    private readonly TimeSpan _timeout;

    public SmtpCopySubmitter(TimeSpan? timeout = null) => _timeout = timeout ?? TimeSpan.FromSeconds(60);

    public async Task<int> SubmitAsync(string server, string sender, IAsyncEnumerable<ListCopy> copies, CancellationToken cancellationToken)
    {
        if (!HostPort.TryParse(server, out string host, out int port))
        {
            throw new InvalidOperationException($"[Policy] CopyServer '{server}' is not HOST:PORT");
        }

        using var client = new SmtpClient { Timeout = (int)_timeout.TotalMilliseconds };
        // Plain SMTP to the local MTA, as for owner notices: loopback, where STARTTLS would only add a failure.
        await client.ConnectAsync(host, port, SecureSocketOptions.None, cancellationToken).ConfigureAwait(false);
        var from = new MailboxAddress(string.Empty, sender); // MailKit writes MAIL FROM:<> for an empty address
        int sent = 0;
        await foreach (ListCopy copy in copies.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            await using (copy.Message.ConfigureAwait(false))
            {
                // MailKit sends only a MimeMessage. A persistent parse leaves each part's content in the copy's own
                // (seekable) stream, so the re-keyed body of up to a few MB is not copied again just to be sent.
                MimeMessage message = await MimeMessage.LoadAsync(copy.Message, persistent: copy.Message.CanSeek, cancellationToken).ConfigureAwait(false);
                using (message)
                {
                    await client.SendAsync(message, from, copy.Recipients.Select(r => new MailboxAddress(string.Empty, r)), cancellationToken)
                        .ConfigureAwait(false);
                }
            }

            sent++;
        }

        await client.DisconnectAsync(quit: true, cancellationToken).ConfigureAwait(false);
        return sent;
    }
}
