using System.Text;

namespace MilterSecureList.KeyRelease;

/// <summary>The key server's Prometheus counters (text format 0.0.4).</summary>
public sealed class KeyServerCounters
{
    private readonly long[] _deposits = new long[Enum.GetValues<DepositStatus>().Length];
    private long _released;
    private long _firstReleases;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _refused = new(StringComparer.Ordinal);

    public long Released => Interlocked.Read(ref _released);

    public void Deposit(DepositStatus status) => Interlocked.Increment(ref _deposits[(int)status]);

    public void Release(ReleaseOutcome outcome)
    {
        if (outcome.Released)
        {
            Interlocked.Increment(ref _released);
            if (outcome.FirstRelease)
            {
                Interlocked.Increment(ref _firstReleases);
            }
        }
        else
        {
            _refused.AddOrUpdate(outcome.Reason, 1, (_, n) => n + 1);
        }
    }

    public string ToPrometheusText()
    {
        var text = new StringBuilder();
        text.Append("# HELP securelist_keyd_deposits_total Deposits by outcome.\n# TYPE securelist_keyd_deposits_total counter\n");
        foreach (DepositStatus s in Enum.GetValues<DepositStatus>())
        {
            text.Append($"securelist_keyd_deposits_total{{outcome=\"{s.ToString().ToLowerInvariant()}\"}} {Interlocked.Read(ref _deposits[(int)s])}\n");
        }

        text.Append("# HELP securelist_keyd_releases_total Keys released to members.\n# TYPE securelist_keyd_releases_total counter\n");
        text.Append($"securelist_keyd_releases_total {Released}\n");
        text.Append("# HELP securelist_keyd_first_releases_total First releases of a post to a member.\n# TYPE securelist_keyd_first_releases_total counter\n");
        text.Append($"securelist_keyd_first_releases_total {Interlocked.Read(ref _firstReleases)}\n");
        text.Append("# HELP securelist_keyd_refusals_total Release requests refused, by the check that failed.\n# TYPE securelist_keyd_refusals_total counter\n");
        foreach (KeyValuePair<string, long> r in _refused.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            text.Append($"securelist_keyd_refusals_total{{check=\"{r.Key}\"}} {r.Value}\n");
        }

        return text.ToString();
    }
}
