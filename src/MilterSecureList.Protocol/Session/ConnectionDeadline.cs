using System.IO.Pipelines;

namespace MilterSecureList.Protocol.Session;

/// <summary>What a connection was waiting for when its deadline passed.</summary>
internal enum DeadlineKind
{
    None,
    /// <summary>OPTNEG after connect.</summary>
    Negotiation,
    /// <summary>The rest of a frame that has begun.</summary>
    Frame,
    /// <summary>The next command, between frames.</summary>
    Idle,
    /// <summary>The peer reading what we wrote.</summary>
    Write,
}

/// <summary>
/// The one deadline a connection has at any time: armed before each read or flush, disarmed when it completes,
/// so time spent in our own code (a handler working on a list message) never counts against the peer. When it
/// passes, <see cref="DeadlineHeartbeat"/> cancels the pending read and flush; the read loop then sees
/// <see cref="Expired"/> and closes the connection. Arming is two stores, so it costs nothing per frame.
/// </summary>
internal sealed class ConnectionDeadline(DeadlineHeartbeat heartbeat, PipeReader input, PipeWriter output)
{
    private long _due = long.MaxValue;
    private DeadlineKind _armed;
    private int _expired;

    /// <summary>The deadline that passed, or <see cref="DeadlineKind.None"/>. Once set it stays: the connection is closing.</summary>
    public DeadlineKind Expired => (DeadlineKind)Volatile.Read(ref _expired);

    public long DueAfter(TimeSpan timeout) => heartbeat.After(timeout);

    public void ArmAt(DeadlineKind kind, long due)
    {
        _armed = kind;
        Volatile.Write(ref _due, due); // publishes _armed to the heartbeat's Volatile.Read of _due
    }

    public void ArmAfter(DeadlineKind kind, TimeSpan timeout) => ArmAt(kind, heartbeat.After(timeout));

    public void Disarm() => Volatile.Write(ref _due, long.MaxValue);

    /// <summary>Called by the heartbeat; true when this call expired the deadline.</summary>
    internal bool Check(long now)
    {
        if (now < Volatile.Read(ref _due))
        {
            return false;
        }

        return Interlocked.CompareExchange(ref _expired, (int)_armed, 0) == 0;
    }

    /// <summary>Wakes the connection's read or flush; if neither is pending, the next one returns cancelled.</summary>
    internal void Cancel()
    {
        input.CancelPendingRead();
        output.CancelPendingFlush();
    }
}

/// <summary>
/// One timer per server that checks every open connection's deadline, instead of a timer (or a linked
/// cancellation source) per read. The timer runs only while connections are open. Deadlines are checked every
/// quarter of the shortest timeout (at most once a second), so a connection is closed at most that much late.
/// </summary>
internal sealed class DeadlineHeartbeat
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _period;
    private readonly HashSet<ConnectionDeadline> _connections = [];
    private ITimer? _timer;

    public DeadlineHeartbeat(TimeProvider time, TimeSpan shortestTimeout)
    {
        _time = time;
        _period = TimeSpan.FromTicks(Math.Clamp(shortestTimeout.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromSeconds(1).Ticks));
    }

    public long After(TimeSpan timeout)
    {
        double ticks = timeout.TotalSeconds * _time.TimestampFrequency;
        long now = _time.GetTimestamp();
        return ticks >= long.MaxValue - now ? long.MaxValue - 1 : now + (long)ticks;
    }

    public ConnectionDeadline Add(PipeReader input, PipeWriter output)
    {
        var deadline = new ConnectionDeadline(this, input, output);
        lock (_connections)
        {
            _connections.Add(deadline);
            _timer ??= _time.CreateTimer(static s => ((DeadlineHeartbeat)s!).Tick(), this, _period, _period);
        }

        return deadline;
    }

    public void Remove(ConnectionDeadline deadline)
    {
        lock (_connections)
        {
            _connections.Remove(deadline);
            if (_connections.Count == 0)
            {
                _timer?.Dispose();
                _timer = null;
            }
        }
    }

    private void Tick()
    {
        long now = _time.GetTimestamp();
        List<ConnectionDeadline>? expired = null;
        lock (_connections)
        {
            foreach (ConnectionDeadline d in _connections)
            {
                if (d.Check(now))
                {
                    (expired ??= []).Add(d);
                }
            }
        }

        // Outside the lock: a cancelled read may resume its connection inline, and that connection's end
        // removes it from the set.
        if (expired is not null)
        {
            foreach (ConnectionDeadline d in expired)
            {
                d.Cancel();
            }
        }
    }
}
