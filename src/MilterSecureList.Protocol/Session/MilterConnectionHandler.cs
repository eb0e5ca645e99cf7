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

    public MilterConnectionHandler(IMilterHandlerFactory factory, MilterSessionOptions? options = null, IMilterSessionObserver? observer = null)
    {
        _factory = factory ?? throw new ArgumentNullException(nameof(factory));
        _options = options ?? new MilterSessionOptions();
        _observer = observer ?? NullMilterSessionObserver.Instance;
        _spoolBudget = new SpoolMemoryBudget(_options.SpoolMemory); // shared by all connections of this server
        if (_options.MaxPayload < MilterLimits.MinMaxPayload)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.MaxPayload, $"MaxPayload must be at least {MilterLimits.MinMaxPayload}");
        }
    }

    /// <summary>
    /// Serves one connection until QUIT, EOF, a protocol violation or a drain. Cancelling
    /// <paramref name="drainToken"/> asks for a graceful end: the connection closes as soon as no message is
    /// open (a message in progress is finished first). Never throws for peer behaviour.
    /// </summary>
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
        try
        {
            session = new MilterSession(_factory, _options, _observer, info, output, _spoolBudget);
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

                ReadResult result = await input.ReadAsync(CancellationToken.None).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                FrameResult last = FrameResult.Continue;
                try
                {
                    while (MilterFrameReader.TryReadFrame(ref buffer, _options.MaxPayload, out MilterFrame frame))
                    {
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
                    }
                    else
                    {
                        input.AdvanceTo(buffer.Start);
                    }
                }

                if (last == FrameResult.EndOfMessage)
                {
                    // The input is released first: an MTA still writing must never wait on our output.
                    await session.EndOfMessageAsync(CancellationToken.None).ConfigureAwait(false);
                }

                FlushResult flush = await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
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
            error = ex;
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
            int messages = session?.MessageCount ?? 0;
            session?.Dispose();
            await input.CompleteAsync(error).ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
            _observer.ConnectionClosed(info, reason, messages);
        }

        return reason;
    }
}
