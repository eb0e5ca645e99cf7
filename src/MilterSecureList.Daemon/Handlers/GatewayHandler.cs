using Microsoft.Extensions.Logging;
using MilterSecureList.Directory;
using MilterSecureList.Gateway;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>The <c>[Milter] Handler = gateway</c> handler: one per milter connection.</summary>
public sealed class GatewayHandlerFactory(GatewayProcessor processor, ILogger logger) : IMilterHandlerFactory
{
    public IMilterHandler Create(MilterConnectionInfo info) => new GatewayHandler(processor, logger);

    internal GatewayProcessor Processor => processor;

    internal ILogger Logger => logger;
}

/// <summary>
/// Adapts milter events to <see cref="GatewayProcessor"/>: the envelope decides at MAIL and RCPT (refusals name the
/// recipient), mail the gateway has nothing to do with is accepted at end of headers (no body transfer), and the
/// processor's result becomes header edits and a replaced body at end of message.
/// </summary>
internal sealed class GatewayHandler(GatewayProcessor processor, ILogger logger) : IMilterHandler
{
    private static readonly MilterHandlerCapabilities s_capabilities = new()
    {
        Events = MilterEvents.MailFrom | MilterEvents.Recipient | MilterEvents.EndOfHeaders,
        RequiredActions = MilterActions.ChangeBody | MilterActions.AddHeaders | MilterActions.ChangeHeaders,
        NeedsHeaders = true,
        NeedsBody = true,

        // RSA at end of message, and directory reads at MAIL/RCPT, stay off the socket event threads. MAIL and RCPT
        // answered from the directory's memory, and end of headers, are answered where the command was read: a
        // thread hop each would cost more (docs/design.md, "Gateway performance"); the others hop themselves.
        RunOnThreadPool = true,
        InlineEvents = MilterEvents.MailFrom | MilterEvents.Recipient | MilterEvents.EndOfHeaders,
    };

    private GatewayTransaction? _transaction;

    public MilterHandlerCapabilities Capabilities => s_capabilities;

    internal GatewayTransaction? Transaction => _transaction;

    public ValueTask<MilterVerdict> OnMailFromAsync(string sender, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken) =>
        Lookup(null, sender, () =>
        {
            _transaction = processor.Begin(sender);
            return MilterVerdict.Continue;
        }, cancellationToken);

    public ValueTask<MilterVerdict> OnRecipientAsync(string recipient, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken) =>
        Lookup(_transaction, recipient, () =>
        {
            if (_transaction is null)
            {
                return MilterVerdict.Continue;
            }

            GatewayReply? reply = processor.CheckRecipient(_transaction, recipient);
            return reply is null ? MilterVerdict.Continue : MilterVerdict.Reply(reply.Code, reply.EnhancedCode, reply.Text);
        }, cancellationToken);

    /// <summary>WORK for an envelope ADDRESS (of TRANSACTION; null at MAIL): here when the directory answers it from memory, else on the thread pool
    /// (a database read must not hold up the socket event thread's other connections).</summary>
    private ValueTask<MilterVerdict> Lookup(GatewayTransaction? transaction, string address, Func<MilterVerdict> work, CancellationToken cancellationToken) =>
        processor.AnswersFromMemory(transaction, address)
            ? new(Guard(work))
            : new(Task.Run(() => Guard(work), cancellationToken));

    /// <summary>Nothing for the gateway: ACCEPT now, so the MTA sends no body.</summary>
    public ValueTask<MilterVerdict> OnEndOfHeadersAsync(IMacroLookup macros, CancellationToken cancellationToken) =>
        new(_transaction is { Direction: not GatewayDirection.None } ? MilterVerdict.Continue : MilterVerdict.Accept);

    public ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken)
    {
        if (_transaction is null)
        {
            return new(MilterVerdict.Continue);
        }

        return new(Guard(() =>
        {
            (GatewayResult result, _, _) = Process(_transaction, message);
            return Apply(result, message);
        }));
    }

    /// <summary>Runs the processor on the context's message; returns the result with the headers and body it read.</summary>
    internal (GatewayResult Result, List<GatewayHeader> Headers, byte[] Body) Process(GatewayTransaction transaction, MilterMessageContext message)
    {
        var headers = message.Headers.Select(h => new GatewayHeader(h.Name, h.Value)).ToList();
        // One array of the body's size (bounded by [Milter] MaxMessageSize), not a growing buffer copied again.
        var body = new byte[message.Body.Length];
        using (Stream stream = message.Body.OpenRead())
        {
            stream.ReadExactly(body);
        }

        string queueId = message.QueueId ?? "NOQUEUE";
        GatewayResult result = processor.Process(transaction, headers, body, queueId);
        if (logger.IsEnabled(LogLevel.Information))
        {
            string verdict = result.Verdict.ToString().ToLowerInvariant();
            GatewayLog.Verdict(logger, queueId, verdict, result.Reason);
        }
        return (result, headers, body);
    }

    /// <summary>The result as a verdict plus header edits and the body (the protocol layer orders them legally).</summary>
    internal static MilterVerdict Apply(GatewayResult result, MilterMessageContext message)
    {
        if (result.Verdict != GatewayVerdict.Continue)
        {
            GatewayReply reply = result.Reply!;
            return MilterVerdict.Reply(reply.Code, reply.EnhancedCode, reply.Text);
        }

        foreach ((string name, int occurrence) in result.DeleteHeaders)
        {
            message.ChangeHeader((uint)occurrence, name, string.Empty);
        }

        foreach (GatewayHeader header in result.PrependHeaders)
        {
            message.InsertHeader(0, header.Name, Lf(header.Value));
        }

        foreach (GatewayHeader header in result.AddHeaders)
        {
            message.AddHeader(header.Name, Lf(header.Value));
        }

        if (result.NewBody is { } body)
        {
            message.ReplaceBody(body);
        }

        return MilterVerdict.Continue;
    }

    /// <summary>The milter protocol folds header values with LF only; the MTA adds the CR.</summary>
    private static string Lf(string value) => value.Replace("\r\n", "\n", StringComparison.Ordinal);

    /// <summary>A directory that cannot be read is our failure: tempfail, the client retries (docs/design.md).</summary>
    private MilterVerdict Guard(Func<MilterVerdict> work)
    {
        try
        {
            return work();
        }
        catch (DirectoryException e)
        {
            logger.LogWarning("gateway: directory problem, message tempfailed: {Problem}", e.Message);
            return MilterVerdict.Reply(451, "4.3.0", "gateway directory temporarily unavailable; try again later");
        }
    }
}
