using System.Text.RegularExpressions;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// contrib/postfix is what operators copy. The end-to-end tests load both snippets; this checks that the pair is
/// complete on its own, i.e. that every transport main.cf.snippet routes the list domain to is defined in
/// master.cf.snippet (an undefined transport leaves list mail deferred with "unknown mail transport" warnings
/// instead of the intended quiet hold).
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed partial class ContribSnippetTests
{
    [GeneratedRegex(@"=\s*([a-z0-9-]+):", RegexOptions.IgnoreCase)]
    private static partial Regex TransportTarget();

    [Fact]
    public void Master_cf_snippet_defines_every_transport_the_main_cf_snippet_names()
    {
        IReadOnlyList<string> main = SecureListPostfix.MainCfSnippet("unix:/run/x.sock", "lists.example.org");
        string transportMaps = Assert.Single(main, l => l.StartsWith("transport_maps", StringComparison.Ordinal));
        var named = TransportTarget().Matches(transportMaps[(transportMaps.IndexOf('=', StringComparison.Ordinal) + 1)..]).Select(m => m.Groups[1].Value).ToHashSet();
        string defer = Assert.Single(main, l => l.StartsWith("defer_transports", StringComparison.Ordinal));
        named.UnionWith(defer[(defer.IndexOf('=', StringComparison.Ordinal) + 1)..].Split([',', ' '], StringSplitOptions.RemoveEmptyEntries));
        Assert.NotEmpty(named);

        HashSet<string> defined = [.. SecureListPostfix.MasterCfSnippet().Select(l => l.Split([' ', '\t'], 2)[0])];
        Assert.All(named, t => Assert.True(defined.Contains(t),
            $"contrib/postfix/main.cf.snippet routes list mail to transport '{t}', but contrib/postfix/master.cf.snippet does not define it (defines: {string.Join(", ", defined)})"));
    }
}
