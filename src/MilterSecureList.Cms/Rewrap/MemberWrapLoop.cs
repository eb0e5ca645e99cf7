using System.Runtime.ExceptionServices;

namespace MilterSecureList.Cms.Rewrap;

/// <summary>Runs one re-wrap's per-member operations on the calling thread and on helper threads from the pool, and
/// lets the helpers start on the public part of the output (<c>prework</c>: headers, identifiers, the 1 MiB copy of the
/// encrypted content) while the calling thread still recovers the key material (docs/design.md, "Re-key: where the
/// time goes").</summary>
/// <remarks>
/// Order of a run: <see cref="Start"/> (helpers queued), the caller's private-key operation, <see cref="Run"/> with the
/// per-member operation, and <see cref="Dispose"/>, which in every case (also after an exception) returns only when
/// no helper runs any more: the caller zeroes the key material after it. Members are handed out in small chunks from
/// one counter, so both cores stay busy until the last chunk. A helper the pool has not started by then is cancelled,
/// never waited for: the calling thread can always finish the whole run alone.
/// </remarks>
internal sealed class MemberWrapLoop : IThreadPoolWorkItem, IDisposable
{
    // Members per claim: one RSA-2048 operation is ~20 µs, so the shared counter is touched every ~40 µs per thread
    // and the other thread waits at most one chunk at the end.
    private const int Chunk = 2;

    private readonly int _count;
    private readonly ManualResetEventSlim _keyReady = new(false);
    private Action? _prework;
    private Action<int>? _wrap;
    private int _next;
    private int _preworkClaimed;
    private int _running;
    private int _closed;
    private bool _abandoned;
    private ExceptionDispatchInfo? _failure;

    /// <param name="count">The number of per-member operations.</param>
    /// <param name="helpers">Pool threads to use besides the caller's (0: the caller does everything).</param>
    /// <param name="prework">Work that needs no key material, done by whichever thread gets to it first.</param>
    public MemberWrapLoop(int count, int helpers, Action? prework)
    {
        _count = count;
        _prework = prework;
        Helpers = helpers;
    }

    public int Helpers { get; }

    /// <summary>Queues the helpers; they do the prework, then wait for <see cref="Run"/>.</summary>
    public void Start()
    {
        for (int i = 0; i < Helpers; i++)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    /// <summary>Sets the prework when it could not be known at construction (it must be set before <see cref="Run"/>).</summary>
    public void SetPrework(Action prework) => Volatile.Write(ref _prework, prework);

    /// <summary>Runs <paramref name="wrap"/>(i) for every i below the count, here and on the helpers, and the prework
    /// if no helper has taken it. Rethrows the first failure of any thread.</summary>
    public void Run(Action<int> wrap)
    {
        _wrap = wrap;
        _keyReady.Set();
        DoPrework();
        Loop();
        Close();
        _failure?.Throw();
    }

    void IThreadPoolWorkItem.Execute()
    {
        Interlocked.Increment(ref _running);
        try
        {
            if (Volatile.Read(ref _closed) != 0)
            {
                return;
            }

            DoPrework();
            _keyReady.Wait();
            if (!Volatile.Read(ref _abandoned))
            {
                Loop();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    /// <summary>Stops the helpers (a run that failed before <see cref="Run"/> abandons them) and waits for every one that
    /// started; none touches the key material or the output after this returns.</summary>
    public void Dispose()
    {
        if (!_keyReady.IsSet)
        {
            Volatile.Write(ref _abandoned, true);
            _keyReady.Set();
        }

        Close();
        _keyReady.Dispose();
    }

    private void DoPrework()
    {
        if (Volatile.Read(ref _prework) is { } prework && Interlocked.Exchange(ref _preworkClaimed, 1) == 0)
        {
            try
            {
                prework();
            }
            catch (Exception e)
            {
                Fail(e);
            }
        }
    }

    private void Loop()
    {
        Action<int> wrap = _wrap!;
        while (true)
        {
            int start = Interlocked.Add(ref _next, Chunk) - Chunk;
            if (start >= _count)
            {
                return;
            }

            int end = Math.Min(start + Chunk, _count);
            for (int i = start; i < end; i++)
            {
                try
                {
                    wrap(i);
                }
                catch (Exception e)
                {
                    Fail(e);
                    return;
                }
            }
        }
    }

    private void Fail(Exception e)
    {
        Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null);
        Volatile.Write(ref _next, _count); // the others stop at their next claim
    }

    // No helper starts work after this; the ones that started are waited for. A helper counts itself as running before
    // it reads _closed, and this reads _running after setting _closed (both with full fences), so none is missed.
    private void Close()
    {
        Interlocked.Exchange(ref _closed, 1);
        var spin = default(SpinWait);
        while (Volatile.Read(ref _running) != 0)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }
}
