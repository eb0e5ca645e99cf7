using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MilterSecureList.Configuration;
using MimeKit;

namespace MilterSecureList.Daemon.Notices;

/// <summary>
/// Submits one notice (to a list owner, to a gateway user) to the local MTA at <c>[Notices] SmtpServer</c> with
/// the null envelope sender, so a notice can neither bounce nor loop back into a list expansion.
/// </summary>
public static class NoticeMail
{
    public static async Task SendAsync(NoticeOptions options, MimeMessage notice, string recipient)
    {
        if (!HostPort.TryParse(options.SmtpServer, out string host, out int port))
        {
            throw new InvalidOperationException($"[Notices] SmtpServer '{options.SmtpServer}' is not HOST:PORT");
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new SmtpClient { Timeout = 30_000 };
        // Plain SMTP to the local MTA: loopback, where a self-signed STARTTLS certificate would only make it fail.
        await client.ConnectAsync(host, port, SecureSocketOptions.None, cts.Token).ConfigureAwait(false);
        // Envelope sender <> (MailKit writes MAIL FROM:<> for an empty address).
        await client.SendAsync(notice, new MailboxAddress(string.Empty, string.Empty), [MailboxAddress.Parse(recipient)], cts.Token).ConfigureAwait(false);
        await client.DisconnectAsync(quit: true, cts.Token).ConfigureAwait(false);
    }

    /// <summary>Whether E is one of the failures a notice submission can meet (logged, never thrown at the message path).</summary>
    public static bool IsSendFailure(Exception e) => e is IOException or SocketException or InvalidOperationException or TimeoutException
        or OperationCanceledException or ProtocolException or CommandException or ParseException;
}
