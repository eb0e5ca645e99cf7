namespace MilterSecureList.Protocol.Session;

/// <summary>
/// Body bytes all spools of one milter server may hold in memory together. A spool takes its memory from here a
/// segment at a time; when the budget is spent, the rest of that body goes to the connection's temp file. So a
/// message up to <see cref="MilterSessionOptions.SpoolThreshold"/> normally never touches the disk, and many
/// large messages at once still cannot grow the process beyond the budget.
/// </summary>
public sealed class SpoolMemoryBudget
{
    private long _used;

    public SpoolMemoryBudget(long limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        Limit = limit;
    }

    /// <summary>No process-wide limit (each spool is still bounded by its own threshold).</summary>
    public static SpoolMemoryBudget Unlimited { get; } = new(long.MaxValue);

    public long Limit { get; }

    /// <summary>Bytes reserved by live spools.</summary>
    public long Used => Interlocked.Read(ref _used);

    /// <summary>Reserves <paramref name="bytes"/> if they fit under the limit.</summary>
    public bool TryReserve(long bytes)
    {
        long used = Interlocked.Read(ref _used);
        while (true)
        {
            if (bytes > Limit - used)
            {
                return false;
            }

            long seen = Interlocked.CompareExchange(ref _used, used + bytes, used);
            if (seen == used)
            {
                return true;
            }

            used = seen;
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}
