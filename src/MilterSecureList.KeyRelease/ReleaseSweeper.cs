using Microsoft.Extensions.Logging;
using MilterSecureList.Directory;

namespace MilterSecureList.KeyRelease;

/// <summary>
/// The key server's periodic sweep (<c>[KeyServer] SweepInterval</c>, docs/key-release.md §4.3): forgets the key material
/// that <c>release-delete</c> says is due, checkpoints SQLite's log after a forgetting, and drops nonces whose replay
/// window has passed. One pass at start-up, then one per interval; a failed pass is logged and retried at the next tick.
/// </summary>
public sealed class ReleaseSweeper(ReleaseStore store, TimeSpan interval, TimeProvider time, ILogger logger)
{
    public const string DefaultIntervalText = "1h";

    public static readonly TimeSpan DefaultInterval = TimeSpan.FromHours(1);

    /// <summary>One pass; returns how many posts' key material it forgot (expired, fully fetched).</summary>
    public (int Expired, int AfterAll) SweepOnce()
    {
        (int expired, int afterAll) = store.ForgetDue();
        if (expired + afterAll > 0)
        {
            KeyServerLog.Forgot(logger, expired, afterAll);
        }

        store.CheckpointAfterForgetting();
        store.PurgeNonces();
        return (expired, afterAll);
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        // The first pass runs off the start-up path: the host answers requests while it runs.
        await Task.Yield();
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            try
            {
                SweepOnce();
            }
            catch (DirectoryException e)
            {
                KeyServerLog.SweepFailed(logger, interval, e.Message);
            }
        }
        while (await WaitAsync(timer, stopping).ConfigureAwait(false));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken stopping)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
