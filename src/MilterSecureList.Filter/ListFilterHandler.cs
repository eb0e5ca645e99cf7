using Microsoft.Extensions.Logging;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Filter;

/// <summary>The <c>[Milter] Handler = lists</c> handler: one per milter connection.</summary>
public sealed class ListFilterHandlerFactory : IMilterHandlerFactory
{
    private readonly ListMessageProcessor _processor;
    private readonly ILogger _logger;
    private readonly IFilterMetrics _metrics;

    public ListFilterHandlerFactory(ListMessageProcessor processor, ILogger logger, IFilterMetrics metrics)
    {
        _processor = processor;
        _logger = logger;
        _metrics = metrics;
    }

    public IMilterHandler Create(MilterConnectionInfo info) => new ListFilterHandler(_processor, _logger, _metrics, info.ConnectionId);
}

/// <summary>
/// Adapts the milter events to <see cref="ListMessageProcessor"/>: recognises list recipients at RCPT,
/// lets mail without one go at end of headers (no body transfer), and turns the processor's decision into
/// modifications and a verdict at end of message.
/// </summary>
internal sealed class ListFilterHandler : IMilterHandler
{
    private static readonly MilterHandlerCapabilities s_capabilities = new()
    {
        // No MailFrom event: MAIL goes without a reply (SMFIP_NR_MAIL), one round trip less per message. The sender
        // the RCPT check needs comes with MAIL as the macro {mail_addr}, asked for here; the envelope for the end of
        // message is recorded by the session either way (docs/design.md, "The list filter's cost through Postfix").
        Events = MilterEvents.Recipient | MilterEvents.EndOfHeaders,
        MacroRequests = new Dictionary<MacroStage, string> { [MacroStage.Mail] = "i {mail_addr}" },
        RequiredActions = MilterActions.ChangeBody | MilterActions.AddRecipient | MilterActions.DeleteRecipient | MilterActions.AddHeaders,
        OptionalActions = MilterActions.ChangeFrom,
        NeedsHeaders = true,
        NeedsBody = true,

        // RCPT may query the directory and EOM does the crypto: keep both off the socket event threads. End of headers
        // only reads what RCPT recorded, so it is answered where the frame was read: one thread hop less per message.
        RunOnThreadPool = true,
        InlineEvents = MilterEvents.EndOfHeaders,
    };

    private readonly ListMessageProcessor _processor;
    private readonly ILogger _logger;
    private readonly IFilterMetrics _metrics;
    private readonly string _connectionId;
    private bool _hasList;

    public ListFilterHandler(ListMessageProcessor processor, ILogger logger, IFilterMetrics metrics, string connectionId)
    {
        _connectionId = connectionId;
        _processor = processor;
        _logger = logger;
        _metrics = metrics;
    }

    public MilterHandlerCapabilities Capabilities => s_capabilities;

    public ValueTask<MilterVerdict> OnRecipientAsync(string recipient, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken)
    {
        // Without {mail_addr} (an MTA that ignores the macro request) the sender is unknown here: the members-only
        // check then waits for the end of message, which always makes it with the recorded envelope sender.
        string? sender = macros.TryGetValue("mail_addr", out string addr) ? addr : null;
        RecipientCheck check = _processor.CheckRecipient(sender, recipient, macros.QueueId ?? "NOQUEUE", _connectionId);
        if (check.Refusal is SmtpReply reply)
        {
            _metrics.Verdict(check.IsTempfail ? "tempfail" : "reject");
            if (_logger.IsEnabled(LogLevel.Information))
            {
                string text = reply.ToString();
                FilterLog.Verdict(_logger, macros.QueueId ?? "NOQUEUE", _connectionId, "rcpt-refused", text, recipient);
            }
            return new(MilterVerdict.Reply(reply.Code, reply.EnhancedCode, reply.Text));
        }

        _hasList |= check.IsList;
        return new(MilterVerdict.Continue);
    }

    /// <summary>Mail to no list: ACCEPT now, so the MTA sends no body and expects no edits for it.</summary>
    public ValueTask<MilterVerdict> OnEndOfHeadersAsync(IMacroLookup macros, CancellationToken cancellationToken)
    {
        bool hasList = _hasList;
        Reset();
        if (hasList)
        {
            return new(MilterVerdict.Continue);
        }

        _metrics.Verdict("pass");
        return new(MilterVerdict.Accept);
    }

    /// <summary>The next message starts clean (there is no MAIL event to reset the state).</summary>
    public ValueTask OnAbortAsync(CancellationToken cancellationToken)
    {
        Reset();
        return default;
    }

    private void Reset() => _hasList = false;

    public async ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken)
    {
        string queueId = message.QueueId ?? "NOQUEUE";
        _metrics.MessageSeen();
        long started = TimeProvider.System.GetTimestamp();
        await using Stream body = message.Body.OpenRead();
        var headers = message.Headers.Select(h => new HeaderField(h.Name, h.Value)).ToList();
        var input = new ListMessage(message.Sender, message.Recipients.Select(r => r.Address).ToList(), headers, body, queueId, ConnectionId: _connectionId);

        using FilterDecision decision = await _processor
            .ProcessAsync(input, () => message.SendProgressAsync(cancellationToken), cancellationToken)
            .ConfigureAwait(false);
        _metrics.Completed(decision, TimeProvider.System.GetElapsedTime(started));

        switch (decision.Kind)
        {
            case FilterVerdictKind.Reject:
            case FilterVerdictKind.Tempfail:
                SmtpReply reply = decision.Reply!;
                if (_logger.IsEnabled(LogLevel.Information))
                {
                    string text = reply.ToString();
                    FilterLog.Verdict(_logger, queueId, _connectionId, decision.Kind == FilterVerdictKind.Reject ? "reject" : "tempfail", text, decision.Reason);
                }

                return MilterVerdict.Reply(reply.Code, reply.EnhancedCode, reply.Text);
        }

        if (!decision.HasModifications)
        {
            return MilterVerdict.Continue;
        }

        // Order matters only for the body: the protocol layer sends envelope and header edits first, then the
        // REPLBODY chunks back to back (Postfix refuses a body replacement mixed with other requests).
        foreach (string rcpt in decision.DeleteRecipients)
        {
            message.DeleteRecipient(rcpt);
        }

        foreach (string rcpt in decision.AddRecipients)
        {
            message.AddRecipient($"<{rcpt}>");
        }

        foreach (HeaderField header in decision.AddHeaders)
        {
            message.AddHeader(header.Name, header.Value);
        }

        if (decision.ChangeFrom is string from && (message.GrantedActions & MilterActions.ChangeFrom) != 0)
        {
            message.ChangeFrom($"<{from}>");
        }

        if (decision.NewBody is Stream newBody)
        {
            // The context disposes the stream once it is sent; the decision must not dispose it first.
            decision.NewBody = null;
            message.ReplaceBody(newBody);
        }

        if (_logger.IsEnabled(LogLevel.Information))
        {
            string text = $"lists={string.Join(",", decision.Lists)} members={decision.AddRecipients.Count}"
                + (decision.CopiesSubmitted > 0 ? $" copies={decision.CopiesSubmitted + 1} members-in-copies={decision.MembersInCopies}" : "");
            FilterLog.Verdict(_logger, queueId, _connectionId, "continue", text, decision.Reason);
        }

        return MilterVerdict.Continue;
    }
}
