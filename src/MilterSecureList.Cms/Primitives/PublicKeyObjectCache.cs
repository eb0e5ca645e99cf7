namespace MilterSecureList.Cms.Primitives;

/// <summary>
/// A bounded, least-recently-used set of imported member public keys (OpenSSL key objects), shared by the process.
/// </summary>
/// <remarks>
/// A <see cref="CmsRecipient"/> keeps its public key as bytes; the key object a wrap needs is made from them (the RSA
/// members of a list larger than the budget get one per wrap that never enters this set). Importing
/// costs several times the RSA operation itself in OpenSSL 3 (docs/design.md, "Lists of 100,000 members"), so the
/// objects of recently used members are kept, up to <see cref="BudgetBytes"/> of estimated native memory: the members of
/// the lists that get mail stay imported, and a list larger than the budget costs one import per member and post instead
/// of holding every member's key object for good. Keyed by the recipient instance (the filter keeps one per member and
/// directory generation). A key object is disposed only when it has left the set and no wrap is still using it.
/// </remarks>
internal sealed class PublicKeyObjectCache
{
    /// <summary>Default budget: 16 MiB, about 5,400 RSA-2048 key objects (every member of a list of up to a few
    /// thousand, or the groups of 1,000 a larger post is split into).</summary>
    public const long DefaultBudgetBytes = 16L << 20;

    private readonly object _gate = new();
    private readonly Dictionary<object, Node> _nodes = new(ReferenceEqualityComparer.Instance);
    private Node? _newest;
    private Node? _oldest;
    private long _bytes;
    private long _budget;

    public PublicKeyObjectCache(long budgetBytes) => _budget = budgetBytes;

    public static PublicKeyObjectCache Shared { get; } = new(DefaultBudgetBytes);

    /// <summary>Estimated native memory the cached key objects may hold; 0 caches nothing (an import per wrap).</summary>
    public long BudgetBytes
    {
        get => Volatile.Read(ref _budget);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            List<IDisposable>? dispose;
            lock (_gate)
            {
                _budget = value;
                dispose = EvictOverBudget();
            }

            DisposeAll(dispose);
        }
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _nodes.Count;
            }
        }
    }

    /// <summary>Imports made because the owner's key object was not in the set (for tests and benchmarks).</summary>
    public long Imports => Interlocked.Read(ref _imports);

    private long _imports;

    /// <summary>The key object of <paramref name="owner"/>, made by <paramref name="import"/> when not in the set. Dispose
    /// the lease when the operation is done.</summary>
    public Lease Rent<TOwner>(TOwner owner, Func<TOwner, IDisposable> import, int estimatedBytes)
        where TOwner : class
    {
        lock (_gate)
        {
            if (_nodes.TryGetValue(owner, out Node? hit))
            {
                hit.Leases++;
                MoveToNewest(hit);
                return new Lease(this, hit);
            }
        }

        // Import outside the lock: it is the slow part, and the other cores may be wrapping meanwhile.
        IDisposable key = import(owner);
        Interlocked.Increment(ref _imports);
        var fresh = new Node(owner, key, estimatedBytes) { Leases = 1 };
        List<IDisposable>? dispose = null;
        Node leased;
        lock (_gate)
        {
            if (_nodes.TryGetValue(owner, out Node? raced))
            {
                // Another thread imported the same key meanwhile: use its object, drop ours.
                raced.Leases++;
                MoveToNewest(raced);
                leased = raced;
                dispose = [key];
            }
            else if (estimatedBytes > _budget)
            {
                fresh.Evicted = true; // never cached: disposed when the lease ends
                leased = fresh;
            }
            else
            {
                _nodes.Add(owner, fresh);
                _bytes += estimatedBytes;
                MoveToNewest(fresh);
                dispose = EvictOverBudget();
                leased = fresh;
            }
        }

        DisposeAll(dispose);
        return new Lease(this, leased);
    }

    private void Return(Node node)
    {
        bool dispose;
        lock (_gate)
        {
            node.Leases--;
            dispose = node.Evicted && node.Leases == 0;
        }

        if (dispose)
        {
            node.Key.Dispose();
        }
    }

    private List<IDisposable>? EvictOverBudget()
    {
        List<IDisposable>? dispose = null;
        while (_bytes > _budget && _oldest is { } victim)
        {
            Unlink(victim);
            _nodes.Remove(victim.Owner);
            _bytes -= victim.EstimatedBytes;
            victim.Evicted = true;
            if (victim.Leases == 0)
            {
                (dispose ??= []).Add(victim.Key);
            }
        }

        return dispose;
    }

    private static void DisposeAll(List<IDisposable>? keys)
    {
        if (keys is not null)
        {
            foreach (IDisposable key in keys)
            {
                key.Dispose();
            }
        }
    }

    private void MoveToNewest(Node node)
    {
        if (_newest == node)
        {
            return;
        }

        Unlink(node);
        node.Older = _newest;
        if (_newest is not null)
        {
            _newest.Newer = node;
        }

        _newest = node;
        _oldest ??= node;
    }

    private void Unlink(Node node)
    {
        if (node.Newer is not null)
        {
            node.Newer.Older = node.Older;
        }
        else if (_newest == node)
        {
            _newest = node.Older;
        }

        if (node.Older is not null)
        {
            node.Older.Newer = node.Newer;
        }
        else if (_oldest == node)
        {
            _oldest = node.Newer;
        }

        node.Newer = null;
        node.Older = null;
    }

    internal sealed class Node(object owner, IDisposable key, int estimatedBytes)
    {
        public object Owner { get; } = owner;

        public IDisposable Key { get; } = key;

        public int EstimatedBytes { get; } = estimatedBytes;

        public int Leases { get; set; }

        public bool Evicted { get; set; }

        public Node? Newer { get; set; }

        public Node? Older { get; set; }
    }

    /// <summary>One wrap's use of a key object.</summary>
    public readonly struct Lease : IDisposable
    {
        private readonly PublicKeyObjectCache _cache;
        private readonly Node _node;

        internal Lease(PublicKeyObjectCache cache, Node node)
        {
            _cache = cache;
            _node = node;
        }

        public IDisposable Key => _node.Key;

        public void Dispose() => _cache?.Return(_node);
    }
}
