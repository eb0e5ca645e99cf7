using System.Globalization;
using System.Text;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// Counters of the milter socket for the [Metrics] endpoint: connections closed by reason (timeouts among
/// them), refused by AllowFrom, and messages refused for a budget. Lock-free increments; formatted when scraped.
/// </summary>
internal sealed class MilterConnectionMetrics
{
    private static readonly MilterConnectionEndReason[] s_reasons = Enum.GetValues<MilterConnectionEndReason>();
    private static readonly MilterMessageLimit[] s_limits = Enum.GetValues<MilterMessageLimit>();
    private readonly long[] _closed = new long[s_reasons.Length];
    private readonly long[] _overLimit = new long[s_limits.Length];
    private long _opened;
    private long _refused;

    public void Opened() => Interlocked.Increment(ref _opened);

    public void Closed(MilterConnectionEndReason reason) => Interlocked.Increment(ref _closed[Array.IndexOf(s_reasons, reason)]);

    public void Refused() => Interlocked.Increment(ref _refused);

    public void OverLimit(MilterMessageLimit limit) => Interlocked.Increment(ref _overLimit[Array.IndexOf(s_limits, limit)]);

    /// <summary>Prometheus label value of a reason: FrameTimeout → frame_timeout.</summary>
    public static string Label<T>(T value)
        where T : struct, Enum
    {
        string name = value.ToString();
        var sb = new StringBuilder(name.Length + 4);
        foreach (char c in name)
        {
            if (char.IsUpper(c) && sb.Length > 0)
            {
                sb.Append('_');
            }

            sb.Append(char.ToLowerInvariant(c));
        }

        return sb.ToString();
    }

    public void AppendPrometheusText(StringBuilder sb)
    {
        Head(sb, "securelist_milter_connections_opened_total", "Milter connections accepted and served.");
        sb.Append(CultureInfo.InvariantCulture, $"securelist_milter_connections_opened_total {Interlocked.Read(ref _opened)}\n");
        Head(sb, "securelist_milter_connections_closed_total", "Milter connections closed, by reason (timeouts included).");
        for (int i = 0; i < s_reasons.Length; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"securelist_milter_connections_closed_total{{reason=\"{Label(s_reasons[i])}\"}} {Interlocked.Read(ref _closed[i])}\n");
        }

        Head(sb, "securelist_milter_connections_refused_total", "Milter connections closed at once because the peer is not in [Listener] AllowFrom.");
        sb.Append(CultureInfo.InvariantCulture, $"securelist_milter_connections_refused_total {Interlocked.Read(ref _refused)}\n");
        Head(sb, "securelist_milter_messages_over_limit_total", "Messages (or recipients) refused for a per-message budget, by budget.");
        for (int i = 0; i < s_limits.Length; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"securelist_milter_messages_over_limit_total{{limit=\"{Label(s_limits[i])}\"}} {Interlocked.Read(ref _overLimit[i])}\n");
        }

        // The runtime's own cost per message: divided by the message counters, these tell allocation and garbage
        // collections per message (bench/lists/run.sh prints them).
        Head(sb, "securelist_gc_collections_total", "Garbage collections since start, by generation (a gen 2 collection counts in 0 and 1 too).");
        for (int g = 0; g <= GC.MaxGeneration; g++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"securelist_gc_collections_total{{generation=\"{g}\"}} {GC.CollectionCount(g)}\n");
        }

        Head(sb, "securelist_gc_allocated_bytes_total", "Bytes allocated on the managed heap since start.");
        sb.Append(CultureInfo.InvariantCulture, $"securelist_gc_allocated_bytes_total {GC.GetTotalAllocatedBytes()}\n");
    }

    private static void Head(StringBuilder sb, string name, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(" counter\n");
}
