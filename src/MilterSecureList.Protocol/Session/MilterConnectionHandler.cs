using System.Buffers;
using System.IO.Pipelines;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>
/// Runs the milter protocol over one duplex pipe. Transport-agnostic: Kestrel's
/// ConnectionHandler, a raw socket and the tests' in-memory pipes are thin adapters around <see cref="RunAsync"/>.
/// </summary>
public sealed class MilterConnectionHandler
{
    private readonly IMilterHandlerFactory _factory;
    private readonly MilterSessionOptions _options;
    private readonly IMilterSessionObserver _observer;
    private readonly SpoolMemoryBudget _spoolBudget;
    private readonly DeadlineHeartbeat _heartbeat;

    public MilterConnectionHandler(IMilterHandlerFactory factory, MilterSessionOptions? options = null, IMilterSessionObserver? observer = null)
    {
        _factory = factory ?? throw new ArgumentNullException(nameof(factory));
        _options = options ?? new MilterSessionOptions();
        _observer = observer ?? NullMilterSessionObserver.Instance;
        _spoolBudget = new SpoolMemoryBudget(_options.SpoolMemory); // shared by all connections of this server
        _heartbeat = new DeadlineHeartbeat(_options.TimeProvider, _options.FrameTimeout < _options.IdleTimeout ? _options.FrameTimeout : _options.IdleTimeout);
        if (_options.MaxPayload < MilterLimits.MinMaxPayload)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.MaxPayload, $"MaxPayload must be at least {MilterLimits.MinMaxPayload}");
        }
    }

    /// <summary>
    /// Serves one connection until QUIT, EOF, a protocol violation, a timeout or a drain. Cancelling
    /// <paramref name="drainToken"/> asks for a graceful end: the connection closes as soon as no message is
    /// open (a message in progress is finished first). Never throws for peer behaviour.
    /// </summary>
    /// <remarks>
    /// Timeouts keep a silent or trickling peer from holding a connection slot: OPTNEG must arrive within
    /// FrameTimeout of connect, a frame that has begun must complete within FrameTimeout, a write must be read
    /// within FrameTimeout, and the next command must come within IdleTimeout. Time our own code spends between
    /// reads (a handler at end of message) never counts.
    /// </remarks>
    public async Task<MilterConnectionEndReason> RunAsync(IDuplexPipe pipe, MilterConnectionInfo info, CancellationToken drainToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        ArgumentNullException.ThrowIfNull(info);
        PipeReader input = pipe.Input;
        PipeWriter output = pipe.Output;
        MilterConnectionEndReason reason = MilterConnectionEndReason.PeerClosed;
        Exception? error = null;
        _observer.ConnectionOpened(info);
        MilterSession? session = null;
        var draining = false;
        ConnectionDeadline deadline = _heartbeat.Add(input, output);
        long negotiationDue = deadline.DueAfter(_options.FrameTimeout);
        long frameDue = 0;
        bool partialFrame = false;
        try
        {
            session = new MilterSession(_factory, _options, _observer, info, output, _spoolBudget, deadline);
            using CancellationTokenRegistration registration = drainToken.Register(() =>
            {
                Volatile.Write(ref draining, true);
                input.CancelPendingRead();
            });

            while (true)
            {
                if (Volatile.Read(ref draining) && session.IsIdle)
                {
                    reason = MilterConnectionEndReason.Drained;
                    break;
                }

                if (deadline.Expired != DeadlineKind.None)
                {
                    break; // expired during a write: the cancellation was spent there
                }

                if (session.Negotiation is null)
                {
                    deadline.ArmAt(DeadlineKind.Negotiation, negotiationDue);
                }
                else if (partialFrame)
                {
                    deadline.ArmAt(DeadlineKind.Frame, frameDue);
                }
                else
                {
                    deadline.ArmAfter(DeadlineKind.Idle, _options.IdleTimeout);
                }

                ReadResult result = await input.ReadAsync(CancellationToken.None).ConfigureAwait(false);
                deadline.Disarm();
                if (deadline.Expired != DeadlineKind.None)
                {
                    input.AdvanceTo(result.Buffer.Start);
                    break;
                }

                ReadOnlySequence<byte> buffer = result.Buffer;
                FrameResult last = FrameResult.Continue;
                bool consumed = false;
                try
                {
                    while (MilterFrameReader.TryReadFrame(ref buffer, _options.MaxPayload, out MilterFrame frame))
                    {
                        consumed = true;
                        last = await session.ProcessFrameAsync(frame, CancellationToken.None).ConfigureAwait(false);
                        if (last != FrameResult.Continue)
                        {
                            break;
                        }
                    }

                    if (last == FrameResult.Continue && result.IsCompleted)
                    {
                        if (!buffer.IsEmpty)
                        {
                            MilterProtocolException.Throw(MilterViolation.TruncatedFrame, $"connection closed inside a frame ({buffer.Length} bytes pending)");
                        }

                        reason = MilterConnectionEndReason.PeerClosed;
                        break;
                    }
                }
                finally
                {
                    // Frame payloads borrowed pipe memory; they are dead after this point. After an EOM only the
                    // frames up to it are consumed; later ones (ABORT, the next MAIL) stay for the next read.
                    if (last == FrameResult.Continue)
                    {
                        input.AdvanceTo(buffer.Start, buffer.End);

                        // What is left is the start of a frame: its clock starts when it is first seen.
                        if (!buffer.IsEmpty && (consumed || !partialFrame))
                        {
                            frameDue = deadline.DueAfter(_options.FrameTimeout);
                        }

                        partialFrame = !buffer.IsEmpty;
                    }
                    else
                    {
                        input.AdvanceTo(buffer.Start);
                        partialFrame = false; // unread frames follow; the next read returns at once
                    }
                }

                if (last == FrameResult.EndOfMessage)
                {
                    // The input is released first: an MTA still writing must never wait on our output.
                    await session.EndOfMessageAsync(CancellationToken.None).ConfigureAwait(false);
                }

                FlushResult flush = await session.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                if (last == FrameResult.Quit)
                {
                    reason = MilterConnectionEndReason.Quit;
                    break;
                }

                if (flush.IsCompleted)
                {
                    reason = MilterConnectionEndReason.PeerClosed;
                    break;
                }
            }
        }
        catch (MilterProtocolException ex)
        {
            _observer.ProtocolViolation(info, ex.Reason, ex.Message);
            reason = MilterConnectionEndReason.ProtocolViolation;
            error = ex;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            reason = MilterConnectionEndReason.TransportError;
            error = deadline.Expired == DeadlineKind.None ? ex : null;
        }
        catch (Exception ex)
        {
            // A bug of ours must cost one connection, never the daemon or a hang: the MTA sees EOF and
            // applies milter_default_action.
            _observer.InternalError(info, ex);
            reason = MilterConnectionEndReason.InternalError;
            error = ex;
        }
        finally
        {
            _heartbeat.Remove(deadline);
            reason = deadline.Expired switch
            {
                DeadlineKind.Negotiation => MilterConnectionEndReason.NegotiationTimeout,
                DeadlineKind.Frame => MilterConnectionEndReason.FrameTimeout,
                DeadlineKind.Idle => MilterConnectionEndReason.IdleTimeout,
                DeadlineKind.Write => MilterConnectionEndReason.WriteTimeout,
                _ => reason,
            };
            int messages = session?.MessageCount ?? 0;
            session?.Dispose();
            await input.CompleteAsync(error).ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
            _observer.ConnectionClosed(info, reason, messages);
        }

        return reason;
    }
}
