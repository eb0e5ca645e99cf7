using Microsoft.Extensions.Logging;
using MilterSecureList.Filter;
using MilterSecureList.Gateway;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Daemon.Handlers;

/// <summary><c>[Milter] Handlers = gateway, lists</c>: both on one message, gateway first (docs/gateway.md, "With lists").</summary>
public sealed class GatewayListsHandlerFactory(GatewayHandlerFactory gateway, ListFilterRuntime lists) : IMilterHandlerFactory
{
    public IMilterHandler Create(MilterConnectionInfo info) =>
        new GatewayListsHandler(new GatewayHandler(gateway.Processor, gateway.Logger), lists.Processor, gateway.Logger, info.ConnectionId);
}

/// <summary>
/// Runs the gateway, then the list filter on the gateway's output, within one milter transaction: a gateway user's
/// plain post to an encrypted list is signed and encrypted to the list certificate (the list is a correspondent
/// like any other), then re-keyed for the members. Refusals of either stage answer RCPT or end of message. The
/// list filter sees the message as the gateway left it; its body, when it replaces one, wins.
/// </summary>
internal sealed class GatewayListsHandler(GatewayHandler gateway, ListMessageProcessor lists, ILogger logger, string connectionId) : IMilterHandler
{
    private static readonly MilterHandlerCapabilities s_capabilities = new()
    {
        Events = MilterEvents.MailFrom | MilterEvents.Recipient | MilterEvents.EndOfHeaders,
        RequiredActions = MilterActions.ChangeBody | MilterActions.AddHeaders | MilterActions.ChangeHeaders | MilterActions.AddRecipient | MilterActions.DeleteRecipient,
        OptionalActions = MilterActions.ChangeFrom,
        NeedsHeaders = true,
        NeedsBody = true,
        RunOnThreadPool = true,
    };

    private string _sender = "<>";
    private bool _hasList;

    public MilterHandlerCapabilities Capabilities => s_capabilities;

    public async ValueTask<MilterVerdict> OnMailFromAsync(string sender, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken)
    {
        _sender = sender;
        _hasList = false;
        return await gateway.OnMailFromAsync(sender, esmtpArgs, macros, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<MilterVerdict> OnRecipientAsync(string recipient, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken)
    {
        // Lists first: their refusals do not depend on the gateway's transaction, whose state records accepted recipients.
        RecipientCheck check = lists.CheckRecipient(_sender, recipient, macros.QueueId ?? "NOQUEUE", connectionId);
        if (check.Refusal is SmtpReply reply)
        {
            return MilterVerdict.Reply(reply.Code, reply.EnhancedCode, reply.Text);
        }

        MilterVerdict verdict = await gateway.OnRecipientAsync(recipient, esmtpArgs, macros, cancellationToken).ConfigureAwait(false);
        _hasList |= check.IsList && verdict.Kind == MilterVerdictKind.Continue;
        return verdict;
    }

    public async ValueTask<MilterVerdict> OnEndOfHeadersAsync(IMacroLookup macros, CancellationToken cancellationToken)
    {
        MilterVerdict forGateway = await gateway.OnEndOfHeadersAsync(macros, cancellationToken).ConfigureAwait(false);
        return forGateway.Kind == MilterVerdictKind.Accept && !_hasList ? MilterVerdict.Accept : MilterVerdict.Continue;
    }

    public async ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken)
    {
        GatewayTransaction? transaction = gateway.Transaction;
        GatewayResult result;
        List<GatewayHeader> headers;
        byte[] body;
        if (transaction is { Direction: not GatewayDirection.None })
        {
            (result, headers, body) = gateway.Process(transaction, message);
            if (result.Verdict != GatewayVerdict.Continue || !_hasList)
            {
                return GatewayHandler.Apply(result, message);
            }
        }
        else
        {
            result = GatewayResult.Pass("no gateway user in the envelope");
            headers = message.Headers.Select(h => new GatewayHeader(h.Name, h.Value)).ToList();
            using Stream stream = message.Body.OpenRead();
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            body = buffer.ToArray();
        }

        // The list filter reads the message as the gateway left it.
        (List<GatewayHeader> after, byte[] afterBody) = GatewayMessages.Split(result.Apply(headers, body));
        string queueId = message.QueueId ?? "NOQUEUE";
        var input = new ListMessage(message.Sender, message.Recipients.Select(r => r.Address).ToList(), after.Select(h => new HeaderField(h.Name, h.Value)).ToList(),
            new MemoryStream(afterBody), queueId, ConnectionId: connectionId);
        using FilterDecision decision = await lists.ProcessAsync(input, () => message.SendProgressAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
        if (decision.Kind != FilterVerdictKind.Continue)
        {
            SmtpReply reply = decision.Reply!;
            if (logger.IsEnabled(LogLevel.Information))
            {
                string verdict = "lists after gateway: " + reply;
                GatewayLog.Verdict(logger, queueId, verdict, decision.Reason);
            }
            return MilterVerdict.Reply(reply.Code, reply.EnhancedCode, reply.Text);
        }

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
            result.AddHeaders.Add(new GatewayHeader(header.Name, header.Value));
        }

        if (decision.ChangeFrom is string from && (message.GrantedActions & MilterActions.ChangeFrom) != 0)
        {
            message.ChangeFrom($"<{from}>");
        }

        if (decision.NewBody is Stream rekeyed)
        {
            using var replaced = new MemoryStream();
            await rekeyed.CopyToAsync(replaced, cancellationToken).ConfigureAwait(false);
            result.NewBody = replaced.ToArray();
        }

        return GatewayHandler.Apply(result, message);
    }
}
