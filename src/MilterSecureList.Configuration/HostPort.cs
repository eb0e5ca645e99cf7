namespace MilterSecureList.Configuration;

/// <summary>
/// A <c>HOST:PORT</c> setting (an SMTP server to hand mail to, a listener): the last colon splits, so a bracketed
/// IPv6 literal such as <c>[::1]:25</c> works; the brackets are removed from the host.
/// </summary>
public static class HostPort
{
    public static bool TryParse(string value, out string host, out int port)
    {
        host = "";
        port = 0;
        int colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), out port) || port is < 1 or > 65535)
        {
            return false;
        }

        host = value[..colon].Trim('[', ']');
        return host.Length > 0;
    }
}
