using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace MilterSecureList.Daemon.Options;

/// <summary>
/// [Listener] AllowFrom: the networks an inet listener serves, as addresses or CIDR networks separated by
/// spaces or commas (<c>127.0.0.0/8 ::1 192.0.2.10</c>). Anyone who reaches the milter port could otherwise
/// hold connection slots or feed it messages, so the default is loopback only.
/// </summary>
public sealed class PeerAllowList
{
    private readonly IPNetwork[] _networks;

    private PeerAllowList(IPNetwork[] networks)
    {
        _networks = networks;
    }

    public static PeerAllowList Loopback { get; } = new([IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")]);

    public IReadOnlyList<IPNetwork> Networks => _networks;

    public static bool TryParse(string s, [NotNullWhen(true)] out PeerAllowList? list, [NotNullWhen(false)] out string? problem)
    {
        list = null;
        problem = null;
        var networks = new List<IPNetwork>();
        foreach (string item in s.Split([' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            string cidr = item.Contains('/', StringComparison.Ordinal) ? item
                : IPAddress.TryParse(item, out IPAddress? single) ? $"{item}/{(single.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)}"
                : item;
            if (!IPNetwork.TryParse(cidr, out IPNetwork network) || !IPAddress.TryParse(cidr[..cidr.IndexOf('/', StringComparison.Ordinal)], out IPAddress? given) || !given.Equals(network.BaseAddress))
            {
                problem = $"'{item}' is not an IP address or a network like 192.0.2.0/24 (no host bits set after the prefix)";
                return false;
            }

            networks.Add(network);
        }

        if (networks.Count == 0)
        {
            problem = "no address given; the default is 127.0.0.0/8 ::1";
            return false;
        }

        list = new PeerAllowList([.. networks]);
        return true;
    }

    /// <summary>True when <paramref name="address"/> is in one of the networks (IPv4-mapped IPv6 counts as IPv4).</summary>
    public bool Allows(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        foreach (IPNetwork n in _networks)
        {
            if (n.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    public override string ToString() => string.Join(' ', _networks.Select(n => n.ToString()));
}
