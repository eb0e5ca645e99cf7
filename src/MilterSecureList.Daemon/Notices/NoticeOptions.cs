using MilterSecureList.Configuration;
using MilterSecureList.Filter;

namespace MilterSecureList.Daemon.Notices;

/// <summary>
/// <c>[Notices]</c>: how the milter tells list owners about members it had to skip. Notices are submitted over
/// SMTP to the local MTA with the null sender, so they can never loop back into a list expansion.
/// </summary>
public sealed class NoticeOptions
{
    public const string Section = "Notices";

    /// <summary><c>Enabled = yes | no</c>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary><c>SmtpServer = 127.0.0.1:25</c>: where notices are submitted.</summary>
    public string SmtpServer { get; set; } = "127.0.0.1:25";

    /// <summary><c>From</c>: the From: header of notices (the envelope sender is always &lt;&gt;).</summary>
    public string From { get; set; } = "securelist@localhost";

    /// <summary><c>RepeatHours = 24</c>: at most one notice per list and member in this many hours.</summary>
    public int RepeatHours { get; set; } = 24;

    /// <summary>Reads the [Notices] keys (see <see cref="PolicyOptions.Bind"/>).</summary>
    public static NoticeOptions Bind(Func<string, string?> value, List<string> problems)
    {
        var o = new NoticeOptions();
        o.Enabled = PolicyOptions.Bool(value, problems, Section, nameof(Enabled), o.Enabled);
        o.SmtpServer = value(nameof(SmtpServer)) ?? o.SmtpServer;
        o.From = value(nameof(From)) ?? o.From;
        o.RepeatHours = PolicyOptions.WholeNumber(value, problems, Section, nameof(RepeatHours), o.RepeatHours, "a whole number of hours");

        problems.AddRange(o.Validate());
        return o;
    }

    public IEnumerable<string> Validate()
    {
        if (!HostPort.TryParse(SmtpServer, out _, out _))
        {
            yield return $"[{Section}] SmtpServer: expected HOST:PORT, e.g. 127.0.0.1:25 (got '{SmtpServer}')";
        }

        if (!From.Contains('@', StringComparison.Ordinal) || From.Any(char.IsWhiteSpace))
        {
            yield return $"[{Section}] From: expected an address such as securelist@example.org (got '{From}')";
        }

        if (RepeatHours is < 0 or > 24 * 365)
        {
            yield return $"[{Section}] RepeatHours: must be between 0 and 8760";
        }
    }
}
