using System.Buffers;
using System.IO.Pipelines;
using MilterSecureList.Protocol.Commands;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>What the read loop does after one frame: read on, run end-of-message, or close.</summary>
internal enum FrameResult
{
    Continue,
    EndOfMessage,
    Quit,
}

/// <summary>
/// Per-connection state machine (docs/protocol.md §7). Connection state (negotiation, CONNECT/HELO
/// macros, the handler) lives for the connection; message state (envelope, headers, body spool, message
/// macros) is reset by ABORT, which may come with no message open or twice in a row. Replies are written to
/// the output pipe; the caller flushes after each batch of frames.
/// </summary>
internal sealed class MilterSession : IDisposable
{
    private readonly IMilterHandlerFactory _factory;
    private readonly MilterSessionOptions _options;
    private readonly IMilterSessionObserver _observer;
    private readonly MilterConnectionInfo _info;
    private readonly PipeWriter _output;
    private readonly MacroTable _macros = new();
    private readonly SpoolMemoryBudget _spoolBudget;
    private readonly ConnectionDeadline _deadline;
    private IMilterHandler _handler;
    private MilterNegotiationResult? _negotiation;
    private SessionState _state = SessionState.AwaitingNegotiation;
    private MessagePhase _phase;

    // Message state.
    private string _sender = string.Empty;
    private IReadOnlyList<string> _senderArgs = [];
    private readonly List<MilterRecipient> _recipients = [];
    private readonly List<MilterHeader> _headers = [];
    private MessageBodySpool? _spool;
    private SpoolFile? _spoolFile;
    private bool _overLimit;
    private long _headerBytes;
    private long _recipientBytes;
    private MilterMessageLimit? _limit;
    private string _limitDetail = string.Empty;
    private string _macroDetail = string.Empty;
    private bool _recipientLimitReported;

    public MilterSession(IMilterHandlerFactory factory, MilterSessionOptions options, IMilterSessionObserver observer, MilterConnectionInfo info, PipeWriter output, SpoolMemoryBudget spoolBudget, ConnectionDeadline deadline)
    {
        _spoolBudget = spoolBudget; // the server's, shared by all its connections
        _deadline = deadline;
        _factory = factory;
        _options = options;
        _observer = observer;
        _info = info;
        _output = output;
        _handler = factory.Create(info);
    }

    private enum SessionState
    {
        AwaitingNegotiation,
        /// <summary>Negotiated; between messages (after CONNECT, HELO, EOM, ABORT).</summary>
        Idle,
        /// <summary>MAIL seen; a message is open.</summary>
        InMessage,
        /// <summary>The message got a final verdict before EOM; only ABORT, MAIL, QUIT... may follow.</summary>
        MessageDecided,
    }

    private enum MessagePhase
    {
        None,
        Mail,
        Recipient,
        Data,
        Header,
        EndOfHeaders,
        Body,
    }

    /// <summary>True between messages: a drain may close the connection without losing mail.</summary>
    public bool IsIdle => _state != SessionState.InMessage;

    public int MessageCount { get; private set; }

    public IMilterHandler Handler => _handler;

    public MilterNegotiationResult? Negotiation => _negotiation;

    /// <summary>
    /// Handles one frame. Returns <see cref="FrameResult.EndOfMessage"/> for EOM: the caller then releases the
    /// input (so a peer still writing is never blocked by our output) and calls <see cref="EndOfMessageAsync"/>.
    /// </summary>
    public async ValueTask<FrameResult> ProcessFrameAsync(MilterFrame frame, CancellationToken cancellationToken)
    {
        MilterCommandCode code = frame.Command;
        if (_state == SessionState.AwaitingNegotiation)
        {
            if (code != MilterCommandCode.OptionNegotiation)
            {
                OutOfOrder(code);
            }

            Negotiate(MilterCommandDecoder.DecodeOptionNegotiation(frame.Payload));
            return FrameResult.Continue;
        }

        switch (code)
        {
            case MilterCommandCode.Macro:
                SetMacros(frame.Payload);
                return FrameResult.Continue;

            case MilterCommandCode.Recipient when _state == SessionState.InMessage
                && (_recipients.Count >= _options.MaxRecipients || _recipientBytes + frame.Payload.Length > _options.MaxRecipientBytes):
                // Checked before decoding: a recipient over the budget is never turned into strings.
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Recipient);
                _phase = MessagePhase.Recipient;
                RecipientOverLimit(code);
                return FrameResult.Continue;

            case MilterCommandCode.Header when _state == SessionState.InMessage
                && (_headers.Count >= _options.MaxHeaders || _headerBytes + frame.Payload.Length > _options.MaxHeaderBytes):
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Header);
                _phase = MessagePhase.Header;
                _limitDetail = _headers.Count >= _options.MaxHeaders ? $"more than MaxHeaders={_options.MaxHeaders} headers" : $"header bytes over MaxHeaderBytes={_options.MaxHeaderBytes}";
                OverLimit(code, MilterMessageLimit.HeaderBytes);
                return FrameResult.Continue;

            case MilterCommandCode.Body:
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Body);
                _phase = MessagePhase.Body;
                if (_state == SessionState.InMessage)
                {
                    AppendBody(frame.Payload);
                    if (_negotiation!.ExpectsReply(code) && DecideIfOverLimit(code))
                    {
                        // Told the MTA now: it stops sending content and will not send EOM.
                        return FrameResult.Continue;
                    }
                }

                Reply(code, MilterVerdict.Continue);
                return FrameResult.Continue;

            case MilterCommandCode.EndOfMessage:
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Body);
                if (!frame.Payload.IsEmpty && _state == SessionState.InMessage)
                {
                    // Other MTAs may carry the last chunk in EOB; libmilter hands it to the body first.
                    AppendBody(frame.Payload);
                }

                return FrameResult.EndOfMessage;

            case MilterCommandCode.Abort:
                if (_state == SessionState.InMessage)
                {
                    await CallHandlerAsync("abort", async ct => { await _handler.OnAbortAsync(ct).ConfigureAwait(false); return MilterVerdict.Continue; }, cancellationToken).ConfigureAwait(false);
                }

                EndMessage(SessionState.Idle);
                return FrameResult.Continue;

            case MilterCommandCode.Quit:
                EndMessage(SessionState.Idle);
                return FrameResult.Quit;

            case MilterCommandCode.QuitNewConnection:
                // A new CONNECT follows on the same socket, without a new OPTNEG: keep the negotiation,
                // drop everything else, and start a fresh handler as for a new connection.
                EndMessage(SessionState.Idle);
                _macros.ClearAll();
                await DisposeHandlerAsync().ConfigureAwait(false);
                _handler = _factory.Create(_info);
                return FrameResult.Continue;
        }

        MilterCommand command = MilterCommandDecoder.Decode(frame);
        switch (command)
        {
            case ConnectCommand c:
                RequireIdle(code);
                await EventAsync(code, "connect", MilterEvents.Connect, ct => _handler.OnConnectAsync(c, _macros, ct), cancellationToken).ConfigureAwait(false);
                break;

            case HeloCommand h:
                RequireIdle(code);
                await EventAsync(code, "helo", MilterEvents.Helo, ct => _handler.OnHeloAsync(h.HeloName, _macros, ct), cancellationToken).ConfigureAwait(false);
                break;

            case MailCommand m:
                RequireIdle(code);
                EndMessage(SessionState.InMessage);
                _phase = MessagePhase.Mail;
                _sender = m.Sender;
                _senderArgs = m.EsmtpArgs;
                if (await EventAsync(code, "mail", MilterEvents.MailFrom, ct => _handler.OnMailFromAsync(m.Sender, m.EsmtpArgs, _macros, ct), cancellationToken).ConfigureAwait(false) is { EndsMessage: true })
                {
                    EndMessage(SessionState.MessageDecided);
                }

                break;

            case RecipientCommand r:
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Recipient);
                _phase = MessagePhase.Recipient;
                MilterVerdict? rv = await EventAsync(code, "rcpt", MilterEvents.Recipient, ct => _handler.OnRecipientAsync(r.Recipient, r.EsmtpArgs, _macros, ct), cancellationToken).ConfigureAwait(false);

                // A non-continue verdict at RCPT rejects only that recipient (docs/protocol.md §7.2).
                if (_state == SessionState.InMessage && rv is null or { EndsMessage: false })
                {
                    _recipients.Add(new MilterRecipient(r.Recipient, r.EsmtpArgs));
                    _recipientBytes += frame.Payload.Length;
                }

                break;

            case DataCommand:
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Recipient);
                _phase = MessagePhase.Data;
                await MessageEventAsync(code, "data", MilterEvents.Data, ct => _handler.OnDataAsync(_macros, ct), cancellationToken).ConfigureAwait(false);
                break;

            case HeaderCommand hd:
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Header);
                _phase = MessagePhase.Header;
                if (_state == SessionState.InMessage)
                {
                    _headers.Add(new MilterHeader(hd.Name, hd.RawValue));
                    _headerBytes += frame.Payload.Length;
                }

                await MessageEventAsync(code, "header", MilterEvents.Header, ct => _handler.OnHeaderAsync(hd.Name, hd.Value, _macros, ct), cancellationToken).ConfigureAwait(false);
                break;

            case EndOfHeadersCommand:
                RequirePhase(code, MessagePhase.Mail, MessagePhase.Header);
                _phase = MessagePhase.EndOfHeaders;
                await MessageEventAsync(code, "eoh", MilterEvents.EndOfHeaders, ct => _handler.OnEndOfHeadersAsync(_macros, ct), cancellationToken).ConfigureAwait(false);
                break;

            case UnknownCommand u:
                // Legal in any state after negotiation; a verdict here does not end the message (libmilter CT_IGNO).
                await EventAsync(code, "unknown", MilterEvents.Unknown, ct => _handler.OnUnknownAsync(u.CommandLine, _macros, ct), cancellationToken).ConfigureAwait(false);
                break;

            default:
                OutOfOrder(code);
                break;
        }

        return FrameResult.Continue;
    }

    public void Dispose()
    {
        EndMessage(SessionState.Idle);
        _spoolFile?.Dispose();
        DisposeHandlerAsync().AsTask().GetAwaiter().GetResult();
    }

    private void Negotiate(OptionNegotiationCommand offer)
    {
        MilterNegotiationResult result = MilterNegotiation.Negotiate(offer, _handler.Capabilities);
        _negotiation = result;
        MilterResponseWriter.WriteOptionNegotiation(_output, result.Version, result.Actions, result.Protocol, result.MacroRequests);
        _state = SessionState.Idle;
        _observer.Negotiated(_info, result.Version, result.Actions, result.Protocol);
        if (result.MissingActions != MilterActions.None)
        {
            _observer.ActionsMissing(_info, result.MissingActions);
        }
    }

    /// <summary>An event inside an open message: a final verdict ends the message (docs/protocol.md §7.2).</summary>
    private async ValueTask MessageEventAsync(MilterCommandCode code, string stage, MilterEvents ev, Func<CancellationToken, ValueTask<MilterVerdict>> call, CancellationToken cancellationToken)
    {
        if (await EventAsync(code, stage, ev, call, cancellationToken).ConfigureAwait(false) is { EndsMessage: true })
        {
            EndMessage(SessionState.MessageDecided);
        }
    }

    /// <summary>
    /// Calls the handler if it asked for the event (and the message is still open), then replies if the MTA
    /// expects a reply. Returns the handler's verdict, or null when the handler was not called.
    /// </summary>
    private async ValueTask<MilterVerdict?> EventAsync(MilterCommandCode code, string stage, MilterEvents ev, Func<CancellationToken, ValueTask<MilterVerdict>> call, CancellationToken cancellationToken)
    {
        MilterVerdict? verdict = null;
        bool messageEvent = code is not (MilterCommandCode.Connect or MilterCommandCode.Helo or MilterCommandCode.Unknown);
        if ((_handler.Capabilities.Events & ev) != 0 && (!messageEvent || _state == SessionState.InMessage))
        {
            verdict = await CallHandlerAsync(stage, call, cancellationToken, inline: (_handler.Capabilities.InlineEvents & ev) != 0).ConfigureAwait(false);
        }

        Reply(code, verdict ?? MilterVerdict.Continue);
        return verdict;
    }

    private async ValueTask<MilterVerdict> CallHandlerAsync(string stage, Func<CancellationToken, ValueTask<MilterVerdict>> call, CancellationToken cancellationToken, bool inline = false)
    {
        try
        {
            if (_handler.Capabilities.RunOnThreadPool && !inline)
            {
                return await Task.Run(() => call(cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
            }

            return await call(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _observer.HandlerFailed(_info, _macros.QueueId, stage, ex);
            return MilterVerdict.Tempfail;
        }
    }

    private void Reply(MilterCommandCode code, MilterVerdict verdict)
    {
        if (_negotiation!.ExpectsReply(code))
        {
            verdict.WriteTo(_output);
        }
    }

    private void AppendBody(System.Buffers.ReadOnlySequence<byte> chunk)
    {
        if (_overLimit || _limit is not null)
        {
            return; // the message is refused already: store nothing more
        }

        _spool ??= NewSpool();
        if (_spool.Length + chunk.Length > _options.MaxMessageSize)
        {
            // Stop storing: memory and disk stay bounded; the verdict comes at BODY or EOM.
            _overLimit = true;
            return;
        }

        try
        {
            _spool.Append(chunk);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Disk full or the temp directory unusable: the message is tempfailed with a log line (at BODY or
            // EOM); the connection stays up for the next one.
            _limit = MilterMessageLimit.Spool;
            _limitDetail = "cannot store the body: " + ex.Message;
        }
    }

    /// <summary>
    /// A MACRO packet replaces its stage's values, unless it would take the connection's macros over
    /// <see cref="MilterSessionOptions.MaxMacroBytes"/>: then it is dropped undecoded and the message is refused.
    /// </summary>
    private void SetMacros(System.Buffers.ReadOnlySequence<byte> payload)
    {
        if (payload.IsEmpty)
        {
            MilterProtocolException.Throw(MilterViolation.MalformedPayload, "MACRO payload is empty (needs the command code)");
        }

        Span<byte> first = stackalloc byte[1];
        payload.Slice(0, 1).CopyTo(first);
        var forCommand = (MilterCommandCode)first[0];
        if (_macros.BytesAfterSet(forCommand, payload.Length) > _options.MaxMacroBytes)
        {
            _macros.Drop(forCommand);
            _macroDetail = $"a {payload.Length}-byte macro packet for '{(char)forCommand}' would exceed MaxMacroBytes={_options.MaxMacroBytes}";
            return;
        }

        MacroCommand macro = MilterCommandDecoder.DecodeMacro(payload);
        _macros.Set(macro.ForCommand, macro.Macros, payload.Length);
    }

    /// <summary>The budget the open message went over, if any (macros dropped count for every message while missing).</summary>
    private MilterMessageLimit? PendingLimit => _limit ?? (_macros.AnyDropped ? MilterMessageLimit.MacroBytes : null);

    private MilterVerdict VerdictFor(MilterMessageLimit limit) => limit switch
    {
        MilterMessageLimit.HeaderBytes => _options.HeaderLimitVerdict,
        MilterMessageLimit.Recipients => _options.RecipientLimitVerdict,
        MilterMessageLimit.MacroBytes => _options.MacroLimitVerdict,
        _ => _options.SpoolFailureVerdict,
    };

    /// <summary>Records that the message went over a budget; if the MTA waits for a reply to this command, decides now.</summary>
    private void OverLimit(MilterCommandCode code, MilterMessageLimit limit)
    {
        _limit ??= limit;
        if (_negotiation!.ExpectsReply(code))
        {
            DecideIfOverLimit(code);
        }
    }

    /// <summary>
    /// A recipient past the budget: when the MTA waits for RCPT replies, only this recipient gets the verdict
    /// (the client sends it again later, RFC 5321 4.5.3.1.10); otherwise the whole message gets it at the end.
    /// </summary>
    private void RecipientOverLimit(MilterCommandCode code)
    {
        _limitDetail = _recipients.Count >= _options.MaxRecipients ? $"more than MaxRecipients={_options.MaxRecipients} recipients" : $"recipient bytes over MaxRecipientBytes={_options.MaxRecipientBytes}";
        if (!_negotiation!.ExpectsReply(code))
        {
            _limit ??= MilterMessageLimit.Recipients;
            return;
        }

        Reply(code, _options.RecipientLimitVerdict);
        if (!_recipientLimitReported)
        {
            _recipientLimitReported = true;
            _observer.MessageOverLimit(_info, _macros.QueueId, MilterMessageLimit.Recipients, _options.RecipientLimitVerdict, _limitDetail);
        }
    }

    /// <summary>Replies with the verdict of the budget the message went over and ends it; false when within every budget.</summary>
    private bool DecideIfOverLimit(MilterCommandCode code)
    {
        if (PendingLimit is { } limit)
        {
            MilterVerdict verdict = VerdictFor(limit);
            Reply(code, verdict);
            _observer.MessageOverLimit(_info, _macros.QueueId, limit, verdict, limit == MilterMessageLimit.MacroBytes && _limit is null ? _macroDetail : _limitDetail);
            EndMessage(SessionState.MessageDecided);
            return true;
        }

        if (_overLimit)
        {
            Reply(code, _options.OversizeVerdict);
            _observer.MessageTooLarge(_info, _macros.QueueId, _options.MaxMessageSize);
            EndMessage(SessionState.MessageDecided);
            return true;
        }

        return false;
    }

    private MessageBodySpool NewSpool() =>
        new(_options.SpoolThreshold, _spoolFile ??= new SpoolFile(_options.TempDirectory), _spoolBudget);

    /// <summary>Runs the handler for the EOM just received and writes edits and the final reply.</summary>
    public async ValueTask EndOfMessageAsync(CancellationToken cancellationToken)
    {
        string? queueId = _macros.QueueId;
        if (_state != SessionState.InMessage)
        {
            // The message was already decided; EOM still needs exactly one reply.
            MilterVerdict.Continue.WriteTo(_output);
            EndMessage(SessionState.Idle);
            return;
        }

        MessageCount++;
        MilterNegotiationResult negotiation = _negotiation!;
        if (negotiation.MissingActions != MilterActions.None)
        {
            _observer.MessageTempfailedForMissingActions(_info, queueId, negotiation.MissingActions);
            MilterVerdict.Tempfail.WriteTo(_output);
            EndMessage(SessionState.Idle);
            return;
        }

        if (DecideIfOverLimit(MilterCommandCode.EndOfMessage))
        {
            EndMessage(SessionState.Idle);
            return;
        }

        _spool ??= NewSpool();
        var context = new MilterMessageContext(_info.ConnectionId, _sender, _senderArgs, _recipients.ToArray(), _headers.ToArray(), _macros, _spool, negotiation.Actions, SendProgressAsync);
        MilterVerdict verdict;
        try
        {
            verdict = await CallHandlerAsync("eom", ct => _handler.OnEndOfMessageAsync(context, ct), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            context.Close();
        }

        int modifications = 0;
        try
        {
            if (verdict.Kind is MilterVerdictKind.Continue or MilterVerdictKind.Accept)
            {
                modifications = await WriteModificationsAsync(context, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Reading the replacement body failed. REPLBODY chunks may already be out, so the only
            // safe final reply is TEMPFAIL (Postfix discards the edits with the message).
            _observer.HandlerFailed(_info, queueId, "eom-body", ex);
            verdict = MilterVerdict.Tempfail;
        }
        finally
        {
            context.ReplacementBody?.Dispose();
        }

        verdict.WriteTo(_output);
        _observer.MessageCompleted(_info, queueId, verdict, _recipients.Count, _spool.Length, modifications);
        EndMessage(SessionState.Idle);
    }

    /// <summary>A REPLBODY frame read from a stream carries at least this much, unless the body ends first.</summary>
    private const int MinReplaceBodyFrame = 32 * 1024;

    /// <summary>Header/envelope edits in call order, then consecutive REPLBODY chunks (docs/protocol.md §4.1, §4.5).</summary>
    private async ValueTask<int> WriteModificationsAsync(MilterMessageContext context, CancellationToken cancellationToken)
    {
        // Flushed in batches: every flush must be read within FrameTimeout, and the MTA works on each edit as it
        // reads it (Postfix's cleanup seeks and writes the queue file per ADDRCPT), so one flush of 100,000
        // ADDRCPTs took it longer than 10 s on a loaded machine and cost the connection (docs/design.md).
        int sinceFlush = 0;
        foreach (MilterModification m in context.Modifications)
        {
            m.WriteTo(_output);
            if (++sinceFlush == MilterSessionOptions.ModificationsPerFlush)
            {
                sinceFlush = 0;
                await FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        int count = context.Modifications.Count;
        if (context.ReplacementBodyBytes is { } bytes)
        {
            ReadOnlyMemory<byte> rest = bytes;
            do
            {
                // Whole chunks per flush, so only the last REPLBODY may be short.
                int n = Math.Min(rest.Length, MilterSessionOptions.BodyFlushBytes / MilterLimits.ChunkSize * MilterLimits.ChunkSize);
                MilterResponseWriter.WriteReplaceBody(_output, rest.Span[..n]);
                rest = rest[n..];
                if (!rest.IsEmpty)
                {
                    await FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            while (!rest.IsEmpty);
            count++;
        }
        else if (context.ReplacementBody is { } stream)
        {
            await WriteReplaceBodyAsync(stream, cancellationToken).ConfigureAwait(false);
            count++;
        }

        return count;
    }

    /// <summary>
    /// Streams the replacement body as consecutive REPLBODY frames, each read straight into the output pipe's
    /// current block and sized to fit it (at most 65535 bytes). Asking the pipe for more than a block in one piece
    /// would make it fall back to ArrayPool.Shared (large-object-heap arrays, one per chunk under load); the
    /// daemon's 128 KiB blocks hold two full frames, smaller blocks get shorter frames. The header is written after the read,
    /// so a read that fails leaves no half-written frame and the caller can still answer TEMPFAIL.
    /// </summary>
    private async ValueTask WriteReplaceBodyAsync(Stream stream, CancellationToken cancellationToken)
    {
        const int header = 5;
        long sinceFlush = 0;
        for (bool first = true; ; first = false)
        {
            Memory<byte> memory = _output.GetMemory(header + MinReplaceBodyFrame);
            Memory<byte> payload = memory.Slice(header, Math.Min(memory.Length - header, MilterLimits.ChunkSize));
            int n = await stream.ReadAtLeastAsync(payload, payload.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (n == 0 && !first)
            {
                return; // no empty trailing frame; an empty body is the one empty frame written below
            }

            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(memory.Span, (uint)n + 1);
            memory.Span[4] = (byte)MilterResponseCode.ReplaceBody;
            _output.Advance(header + n);
            if (n < payload.Length)
            {
                return; // the stream ended inside this frame
            }

            sinceFlush += n;
            if (sinceFlush >= MilterSessionOptions.BodyFlushBytes)
            {
                sinceFlush = 0;
                await FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask SendProgressAsync(CancellationToken cancellationToken)
    {
        MilterResponseWriter.WriteProgress(_output);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Flushes under the write deadline; a peer that stops reading ends the connection instead of holding it.</summary>
    internal async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken)
    {
        // An expired deadline cancels the pending flush once; every later one must fail without waiting.
        ThrowIfExpired();
        _deadline.ArmAfter(DeadlineKind.Write, _options.FrameTimeout);
        FlushResult result = await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        _deadline.Disarm();
        ThrowIfExpired();
        return result;
    }

    private void ThrowIfExpired()
    {
        if (_deadline.Expired != DeadlineKind.None)
        {
            throw new OperationCanceledException($"connection deadline passed ({_deadline.Expired})");
        }
    }

    private void EndMessage(SessionState next)
    {
        _state = next;
        _phase = next == SessionState.InMessage ? MessagePhase.Mail : MessagePhase.None;
        if (next != SessionState.MessageDecided)
        {
            _sender = string.Empty;
            _senderArgs = [];
            _recipients.Clear();
            _headers.Clear();
            _overLimit = false;
            _limit = null;
            _headerBytes = 0;
            _recipientBytes = 0;
            _recipientLimitReported = false;
        }

        _spool?.Dispose();
        _spool = null;
        if (next == SessionState.Idle)
        {
            _macros.ClearMessageStages();
        }
    }

    private void RequireIdle(MilterCommandCode code)
    {
        if (_state == SessionState.InMessage)
        {
            OutOfOrder(code);
        }
    }

    /// <summary>The message must be open (or already decided) and at a phase in [min, max]: the order is monotonic.</summary>
    private void RequirePhase(MilterCommandCode code, MessagePhase min, MessagePhase max)
    {
        if (_state == SessionState.MessageDecided)
        {
            return; // Postfix may still be sending what it had pipelined; nothing more is recorded.
        }

        if (_state != SessionState.InMessage || _phase < min || _phase > max)
        {
            OutOfOrder(code);
        }
    }

    private ValueTask DisposeHandlerAsync() => _handler switch
    {
        IAsyncDisposable a => a.DisposeAsync(),
        IDisposable d => Dispose(d),
        _ => default,
    };

    private static ValueTask Dispose(IDisposable d)
    {
        d.Dispose();
        return default;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void OutOfOrder(MilterCommandCode code) =>
        MilterProtocolException.Throw(MilterViolation.CommandOutOfOrder, $"command '{(char)code}' is not legal in state {_state}/{_phase}");
}
