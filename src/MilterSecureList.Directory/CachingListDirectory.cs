using System.Collections.Concurrent;

namespace MilterSecureList.Directory;

/// <summary>
/// The daemon's directory: answers from memory. A timer polls the database's change counter
/// (one single-row read) every <see cref="DirectoryOptions.CacheRefreshSeconds"/>; when it moved,
/// the next lookups reload. So a CLI change is seen within that period, and a cached list costs
/// no database round trip per message.
/// </summary>
/// <remarks>
/// If the database is unreachable, cached answers keep being served (the message was already
/// expandable a moment ago) and <see cref="LastRefreshError"/> says why; lookups that miss the
/// cache throw <see cref="DirectoryException"/> so the filter tempfails. Only for a while: past
/// <see cref="StaleLimitFor"/> since the last good poll every lookup throws, so a host cut off from a
/// directory other hosts still change stops delivering to members removed meanwhile (docs/operations.md).
/// </remarks>
public sealed class CachingListDirectory : IListDirectory, IDisposable
{
    /// <summary>Superseded key pairs stay alive this long: a filter may still be decrypting with them.</summary>
    private static readonly TimeSpan s_keyGrace = TimeSpan.FromSeconds(60);

    private readonly ListDirectory _inner;
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private readonly object _refreshLock = new();
    private readonly List<(DateTimeOffset SupersededAt, IReadOnlyList<ListKeyPair> Keys)> _retiredKeys = [];
    private readonly TimeSpan _staleLimit;
    private volatile Snapshot _snapshot;
    private volatile string? _lastRefreshError;
    private long _lastGoodPollTicks;
    private bool _disposed;

    public CachingListDirectory(ListDirectory inner, TimeSpan refreshInterval, TimeProvider time)
    {
        _inner = inner;
        _time = time;
        _staleLimit = StaleLimitFor(refreshInterval);
        _snapshot = Load();
        _timer = time.CreateTimer(_ => Refresh(), null, refreshInterval, refreshInterval);
    }

    public CachingListDirectory(ListDirectory inner, DirectoryOptions options, TimeProvider time)
        : this(inner, TimeSpan.FromSeconds(options.CacheRefreshSeconds), time)
    {
    }

    /// <summary>The generation the cached data belongs to.</summary>
    public long Generation => _snapshot.Generation;

    /// <summary>Why the last poll failed; null after a successful one.</summary>
    public string? LastRefreshError
    {
        get => _lastRefreshError;
        private set => _lastRefreshError = value;
    }

    /// <summary>
    /// How long cached answers outlive the last good poll while the database is unreachable: ten refresh
    /// periods, at least a minute. Long enough to ride out a database restart, short enough that a host
    /// cut off from the shared directory stops serving a membership others may have changed.
    /// </summary>
    public static TimeSpan StaleLimitFor(TimeSpan refreshInterval) =>
        refreshInterval * 10 > TimeSpan.FromMinutes(1) ? refreshInterval * 10 : TimeSpan.FromMinutes(1);

    public bool TryGetList(string address, out MailingList list) =>
        Current().Lists.TryGetValue(EmailAddress.Normalize(address), out list!);

    public ExpandedList Expand(string listAddress)
    {
        Snapshot snapshot = Current();
        string norm = EmailAddress.Normalize(listAddress);
        if (!snapshot.Lists.ContainsKey(norm))
        {
            throw new DirectoryException(DirectoryError.UnknownList, $"no list {listAddress} in the directory");
        }

        // Lazy: concurrent first lookups of one list expand it once. A failed expansion is not cached.
        Lazy<ExpandedList> entry = snapshot.Expansions.GetOrAdd(norm, _ => new Lazy<ExpandedList>(() => _inner.Expand(listAddress, snapshot.Lists, _inner.MembersOf)));
        try
        {
            return entry.Value;
        }
        catch
        {
            snapshot.Expansions.TryRemove(new KeyValuePair<string, Lazy<ExpandedList>>(norm, entry));
            throw;
        }
    }

    public IReadOnlyList<ListKeyPair> GetListKeys(string listAddress)
    {
        Snapshot snapshot = Current();
        string norm = EmailAddress.Normalize(listAddress);
        Lazy<IReadOnlyList<ListKeyPair>> entry = snapshot.Keys.GetOrAdd(norm, _ => new Lazy<IReadOnlyList<ListKeyPair>>(() => _inner.GetListKeys(listAddress)));
        try
        {
            return entry.Value;
        }
        catch
        {
            snapshot.Keys.TryRemove(new KeyValuePair<string, Lazy<IReadOnlyList<ListKeyPair>>>(norm, entry));
            throw;
        }
    }

    /// <summary>Polls the change counter now; reloads when it moved. Returns true when it did.</summary>
    public bool Refresh()
    {
        lock (_refreshLock)
        {
            if (_disposed)
            {
                return false;
            }

            try
            {
                long generation = _inner.Generation;
                LastRefreshError = null;
                MarkGoodPoll();
                if (generation == _snapshot.Generation)
                {
                    DisposeExpiredKeys();
                    return false;
                }

                Snapshot previous = _snapshot;
                _snapshot = Load();
                RetireKeys(previous);
                return true;
            }
            catch (Exception e)
            {
                // Runs on a timer thread: an escaping exception would end the daemon. Keep serving
                // the cached data and report why the poll failed.
                LastRefreshError = e is DirectoryException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                return false;
            }
        }
    }

    /// <summary>The snapshot to answer from, unless the database has been unreachable for longer than the stale limit.</summary>
    private Snapshot Current()
    {
        Snapshot snapshot = _snapshot;
        if (_lastRefreshError is { } error)
        {
            var lastGood = new DateTimeOffset(Interlocked.Read(ref _lastGoodPollTicks), TimeSpan.Zero);
            if (_time.GetUtcNow() - lastGood > _staleLimit)
            {
                throw new DirectoryException(
                    DirectoryError.Unavailable,
                    $"directory unreachable since {lastGood:yyyy-MM-dd HH:mm:ss}Z, longer than the {_staleLimit.TotalSeconds:F0} s cached lists are served for ({error})");
            }
        }

        return snapshot;
    }

    private void MarkGoodPoll() => Interlocked.Exchange(ref _lastGoodPollTicks, _time.GetUtcNow().UtcTicks);

    private Snapshot Load()
    {
        // Read the counter first: a write landing during the load bumps it again and the next poll reloads.
        long generation = _inner.Generation;
        MarkGoodPoll();
        var lists = new Dictionary<string, MailingList>(StringComparer.Ordinal);
        foreach (MailingList list in _inner.GetLists())
        {
            lists[EmailAddress.Normalize(list.Address)] = list;
        }

        return new Snapshot(generation, lists);
    }

    private void RetireKeys(Snapshot previous)
    {
        var loaded = previous.Keys.Values.Where(l => l.IsValueCreated).Select(l => l.Value).ToList();
        DateTimeOffset now = _time.GetUtcNow();
        foreach (IReadOnlyList<ListKeyPair> keys in loaded)
        {
            _retiredKeys.Add((now, keys));
        }

        DisposeExpiredKeys();
    }

    private void DisposeExpiredKeys()
    {
        DateTimeOffset now = _time.GetUtcNow();
        for (int i = _retiredKeys.Count - 1; i >= 0; i--)
        {
            if (now - _retiredKeys[i].SupersededAt >= s_keyGrace)
            {
                foreach (ListKeyPair pair in _retiredKeys[i].Keys)
                {
                    pair.Dispose();
                }

                _retiredKeys.RemoveAt(i);
            }
        }
    }

    public void Dispose()
    {
        lock (_refreshLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _timer.Dispose();
            foreach ((_, IReadOnlyList<ListKeyPair> keys) in _retiredKeys)
            {
                foreach (ListKeyPair pair in keys)
                {
                    pair.Dispose();
                }
            }

            foreach (Lazy<IReadOnlyList<ListKeyPair>> entry in _snapshot.Keys.Values.Where(l => l.IsValueCreated))
            {
                foreach (ListKeyPair pair in entry.Value)
                {
                    pair.Dispose();
                }
            }
        }
    }

    private sealed class Snapshot(long generation, Dictionary<string, MailingList> lists)
    {
        public long Generation { get; } = generation;

        public Dictionary<string, MailingList> Lists { get; } = lists;

        public ConcurrentDictionary<string, Lazy<ExpandedList>> Expansions { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, Lazy<IReadOnlyList<ListKeyPair>>> Keys { get; } = new(StringComparer.Ordinal);
    }
}
