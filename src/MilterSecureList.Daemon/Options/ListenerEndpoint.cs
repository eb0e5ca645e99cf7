using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace MilterSecureList.Daemon.Options;

/// <summary>A listen address in Postfix's milter syntax: <c>inet:HOST:PORT</c> or <c>unix:/path</c>.</summary>
public sealed record ListenerEndpoint(IPEndPoint? Inet, string? UnixPath)
{
    public static ListenerEndpoint Parse(string s) =>
        TryParse(s, out ListenerEndpoint? e, out string? problem) ? e : throw new FormatException(problem);

    public static bool TryParse(string s, [NotNullWhen(true)] out ListenerEndpoint? endpoint, [NotNullWhen(false)] out string? problem)
    {
        endpoint = null;
        problem = null;
        if (s.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = s[5..];
            if (!path.StartsWith('/'))
            {
                problem = $"'{s}': the unix socket path must be absolute";
                return false;
            }

            if (path.Length > 107)
            {
                problem = $"'{s}': unix socket paths are limited to 107 bytes";
                return false;
            }

            if (!System.IO.Directory.Exists(Path.GetDirectoryName(path)))
            {
                problem = $"'{s}': directory {Path.GetDirectoryName(path)} does not exist";
                return false;
            }

            endpoint = new ListenerEndpoint(null, path);
            return true;
        }

        if (s.StartsWith("inet:", StringComparison.Ordinal))
        {
            string hp = s[5..];
            int colon = hp.LastIndexOf(':');
            string host = colon > 0 ? hp[..colon].Trim('[', ']') : string.Empty;
            if (colon <= 0 || !int.TryParse(hp[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            {
                problem = $"'{s}' is not inet:HOST:PORT with a port from 1 to 65535";
                return false;
            }

            IPAddress? address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out IPAddress? a) ? a : null;
            if (address is null)
            {
                problem = $"'{s}': '{host}' is not an IP address";
                return false;
            }

            endpoint = new ListenerEndpoint(new IPEndPoint(address, port), null);
            return true;
        }

        problem = $"'{s}' must be inet:HOST:PORT or unix:/path";
        return false;
    }

    public override string ToString() => UnixPath is not null ? "unix:" + UnixPath : "inet:" + Inet;
}
