using MilterSecureList.Configuration;
using MilterSecureList.Mime;
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

        await LocalSubmission.SendAsync(host, port, notice, recipient).ConfigureAwait(false);
    }

    /// <summary>Whether E is one of the failures a notice submission can meet (logged, never thrown at the message path).</summary>
    public static bool IsSendFailure(Exception e) => LocalSubmission.IsSendFailure(e);
}
