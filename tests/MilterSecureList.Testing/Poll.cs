using System.Diagnostics;

namespace MilterSecureList.Testing;

/// <summary>
/// The one way tests wait for an asynchronous effect: check a condition until it holds or a deadline passes, then
/// fail with what was awaited (and, when given, the evidence at that moment: a log tail, the output so far). A wait
/// never proves that something did not happen; for that, wait for a later event that is ordered after it.
/// </summary>
public static class Poll
{
    /// <summary>Deadline when the caller names none: generous, since a slow machine must not fail a correct test.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Waits until <paramref name="condition"/> holds; throws <see cref="TimeoutException"/> naming <paramref name="description"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string description, TimeSpan? timeout = null, TimeSpan? interval = null, Func<string>? evidence = null)
    {
        TimeSpan limit = timeout ?? DefaultTimeout;
        var clock = Stopwatch.StartNew();
        while (!await condition().ConfigureAwait(false))
        {
            if (clock.Elapsed > limit)
            {
                throw Expired(description, limit, evidence);
            }

            await Task.Delay(interval ?? DefaultInterval).ConfigureAwait(false);
        }
    }

    public static Task UntilAsync(Func<bool> condition, string description, TimeSpan? timeout = null, TimeSpan? interval = null, Func<string>? evidence = null) =>
        UntilAsync(() => Task.FromResult(condition()), description, timeout, interval, evidence);

    /// <summary>Waits until <paramref name="probe"/> returns a value (not null) and returns it.</summary>
    public static async Task<T> ForAsync<T>(Func<Task<T?>> probe, string description, TimeSpan? timeout = null, TimeSpan? interval = null, Func<string>? evidence = null)
        where T : class
    {
        T? value = null;
        await UntilAsync(async () => (value = await probe().ConfigureAwait(false)) is not null, description, timeout, interval, evidence).ConfigureAwait(false);
        return value!;
    }

    public static Task<T> ForAsync<T>(Func<T?> probe, string description, TimeSpan? timeout = null, TimeSpan? interval = null, Func<string>? evidence = null)
        where T : class =>
        ForAsync(() => Task.FromResult(probe()), description, timeout, interval, evidence);

    /// <summary>The blocking form, for synchronous tests (no async context to return to).</summary>
    public static void Until(Func<bool> condition, string description, TimeSpan? timeout = null, TimeSpan? interval = null, Func<string>? evidence = null)
    {
        TimeSpan limit = timeout ?? DefaultTimeout;
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > limit)
            {
                throw Expired(description, limit, evidence);
            }

            Thread.Sleep(interval ?? DefaultInterval);
        }
    }

    private static TimeoutException Expired(string description, TimeSpan limit, Func<string>? evidence) =>
        new($"timed out after {limit.TotalSeconds:0.#} s waiting for {description}{(evidence is null ? string.Empty : "\n" + evidence())}");
}
