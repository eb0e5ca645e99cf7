using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using MilterSecureList.Filter;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// The list filter's <see cref="IFilterMetrics"/> as counters for the daemon's <c>[Metrics]</c> endpoint, in Prometheus text exposition format 0.0.4. Lock-free
/// increments on the message path; formatting happens only when scraped.
/// </summary>
public sealed class FilterMetrics : IFilterMetrics
{
    /// <summary>End-of-message latency buckets in seconds (upper bounds).</summary>
    private static readonly double[] s_buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly ConcurrentDictionary<string, long> _verdicts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly long[] _latencyBuckets = new long[s_buckets.Length + 1];
    private long _messages;
    private long _listsExpanded;
    private long _membersRekeyed;
    private long _latencyCount;
    private long _latencyMicros;

    /// <summary>Reads the bytes currently spooled by the protocol layer (a gauge); set by the daemon.</summary>
    public Func<long>? SpoolBytes { get; set; }

    public void MessageSeen() => Interlocked.Increment(ref _messages);

    public void Verdict(string kind) => _verdicts.AddOrUpdate(kind, 1, (_, n) => n + 1);

    public void Error(string errorClass) => _errors.AddOrUpdate(errorClass, 1, (_, n) => n + 1);

    public void Completed(FilterDecision decision, TimeSpan elapsed)
    {
        Interlocked.Add(ref _listsExpanded, decision.Lists.Count);
        Interlocked.Add(ref _membersRekeyed, decision.MembersRekeyed);
        Verdict(decision.Kind switch
        {
            FilterVerdictKind.Reject => "reject",
            FilterVerdictKind.Tempfail => "tempfail",
            _ => decision.Lists.Count > 0 ? "expanded" : "pass",
        });
        if (decision.Kind == FilterVerdictKind.Tempfail)
        {
            Error(decision.Reason.StartsWith("directory", StringComparison.Ordinal) ? "directory"
                : decision.Reason.StartsWith("local failure", StringComparison.Ordinal) ? "internal"
                : "policy");
        }

        double seconds = elapsed.TotalSeconds;
        int i = 0;
        while (i < s_buckets.Length && seconds > s_buckets[i])
        {
            i++;
        }

        Interlocked.Increment(ref _latencyBuckets[i]);
        Interlocked.Increment(ref _latencyCount);
        Interlocked.Add(ref _latencyMicros, (long)(seconds * 1_000_000));
    }

    public string ToPrometheusText()
    {
        var sb = new StringBuilder();
        Counter(sb, "securelist_messages_seen_total", "Messages to at least one list that reached end of message.", Interlocked.Read(ref _messages));
        Counter(sb, "securelist_lists_expanded_total", "List expansions (one per list per message).", Interlocked.Read(ref _listsExpanded));
        Counter(sb, "securelist_members_rekeyed_total", "Session keys wrapped for members.", Interlocked.Read(ref _membersRekeyed));
        Labelled(sb, "securelist_verdicts_total", "Verdicts by kind.", "kind", _verdicts);
        Labelled(sb, "securelist_errors_total", "Tempfails by error class.", "class", _errors);

        sb.Append("# HELP securelist_eom_latency_seconds End-of-message processing time for list messages.\n");
        sb.Append("# TYPE securelist_eom_latency_seconds histogram\n");
        long cumulative = 0;
        for (int i = 0; i < s_buckets.Length; i++)
        {
            cumulative += Interlocked.Read(ref _latencyBuckets[i]);
            sb.Append(CultureInfo.InvariantCulture, $"securelist_eom_latency_seconds_bucket{{le=\"{s_buckets[i]}\"}} {cumulative}\n");
        }

        cumulative += Interlocked.Read(ref _latencyBuckets[^1]);
        sb.Append(CultureInfo.InvariantCulture, $"securelist_eom_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n");
        sb.Append(CultureInfo.InvariantCulture, $"securelist_eom_latency_seconds_sum {Interlocked.Read(ref _latencyMicros) / 1e6}\n");
        sb.Append(CultureInfo.InvariantCulture, $"securelist_eom_latency_seconds_count {Interlocked.Read(ref _latencyCount)}\n");

        sb.Append("# HELP securelist_spool_bytes Message body bytes currently spooled (memory and temp files).\n");
        sb.Append("# TYPE securelist_spool_bytes gauge\n");
        sb.Append(CultureInfo.InvariantCulture, $"securelist_spool_bytes {SpoolBytes?.Invoke() ?? 0}\n");
        return sb.ToString();
    }

    private static void Counter(StringBuilder sb, string name, string help, long value)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(" counter\n");
        sb.Append(CultureInfo.InvariantCulture, $"{name} {value}\n");
    }

    private static void Labelled(StringBuilder sb, string name, string help, string label, ConcurrentDictionary<string, long> values)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(" counter\n");
        foreach (KeyValuePair<string, long> kv in values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"{name}{{{label}=\"{kv.Key}\"}} {kv.Value}\n");
        }
    }
}
