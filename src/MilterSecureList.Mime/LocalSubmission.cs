using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace MilterSecureList.Mime;

/// <summary>
/// Submits one generated message (an owner notice, a gateway notice, a key server's receipt) to the local MTA over plain
/// SMTP with the null envelope sender, so it can neither bounce nor loop back into a list expansion.
/// </summary>
public static class LocalSubmission
{
    public static async Task SendAsync(string host, int port, MimeMessage message, string recipient)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new SmtpClient { Timeout = 30_000 };
        // Plain SMTP to the local MTA: loopback, where a self-signed STARTTLS certificate would only make it fail.
        await client.ConnectAsync(host, port, SecureSocketOptions.None, cts.Token).ConfigureAwait(false);
        // Envelope sender <> (MailKit writes MAIL FROM:<> for an empty address).
        await client.SendAsync(message, new MailboxAddress(string.Empty, string.Empty), [MailboxAddress.Parse(recipient)], cts.Token).ConfigureAwait(false);
        await client.DisconnectAsync(quit: true, cts.Token).ConfigureAwait(false);
    }

    /// <summary>Whether E is one of the failures a submission can meet (logged by the caller, never thrown at the message path).</summary>
    public static bool IsSendFailure(Exception e) => e is IOException or SocketException or InvalidOperationException or TimeoutException
        or OperationCanceledException or ProtocolException or CommandException or ParseException;
}
