using System.Collections.Concurrent;
using MilterSecureList.Protocol.Commands;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Tests.Session;

/// <summary>A handler that records events and runs a per-test end-of-message script.</summary>
internal sealed class RecordingHandler : IMilterHandler, IDisposable
{
    public List<string> Events { get; } = [];

    public List<(string Sender, string[] Recipients, string[] Headers, byte[] Body, string? QueueId)> Messages { get; } = [];

    public MilterHandlerCapabilities Capabilities { get; init; } = new()
    {
        RequiredActions = MilterActions.ChangeBody | MilterActions.AddRecipient | MilterActions.DeleteRecipient,
        OptionalActions = MilterActions.AddHeaders | MilterActions.ChangeHeaders | MilterActions.Quarantine | MilterActions.ChangeFrom | MilterActions.AddRecipientWithArgs,
    };

    public Func<MilterMessageContext, ValueTask<MilterVerdict>>? OnEom { get; init; }

    public Func<string, MilterVerdict>? OnRcpt { get; init; }

    public MilterMessageContext? LastContext { get; private set; }

    public bool Disposed { get; private set; }

    public ValueTask<MilterVerdict> OnConnectAsync(ConnectCommand connect, IMacroLookup macros, CancellationToken cancellationToken)
    {
        Events.Add("connect:" + connect.HostName);
        return new(MilterVerdict.Continue);
    }

    public ValueTask<MilterVerdict> OnHeloAsync(string heloName, IMacroLookup macros, CancellationToken cancellationToken)
    {
        Events.Add("helo:" + heloName);
        return new(MilterVerdict.Continue);
    }

    public ValueTask<MilterVerdict> OnMailFromAsync(string sender, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken)
    {
        Events.Add("mail:" + sender);
        return new(MilterVerdict.Continue);
    }

    public ValueTask<MilterVerdict> OnRecipientAsync(string recipient, IReadOnlyList<string> esmtpArgs, IMacroLookup macros, CancellationToken cancellationToken)
    {
        Events.Add("rcpt:" + recipient);
        return new(OnRcpt?.Invoke(recipient) ?? MilterVerdict.Continue);
    }

    public ValueTask<MilterVerdict> OnHeaderAsync(string name, string value, IMacroLookup macros, CancellationToken cancellationToken)
    {
        Events.Add("header:" + name);
        return new(MilterVerdict.Continue);
    }

    public async ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken)
    {
        Events.Add("eom");
        LastContext = message;
        using Stream s = message.Body.OpenRead();
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms, cancellationToken);
        Messages.Add((message.Sender, message.Recipients.Select(r => r.Address).ToArray(), message.Headers.Select(h => h.Name + ":" + h.Value).ToArray(), ms.ToArray(), message.QueueId));
        return OnEom is null ? MilterVerdict.Continue : await OnEom(message);
    }

    public ValueTask OnAbortAsync(CancellationToken cancellationToken)
    {
        Events.Add("abort");
        return default;
    }

    public void Dispose() => Disposed = true;
}

internal sealed class Factory(Func<RecordingHandler> create) : IMilterHandlerFactory
{
    public List<RecordingHandler> Created { get; } = [];

    public IMilterHandler Create(MilterConnectionInfo info)
    {
        RecordingHandler h = create();
        Created.Add(h);
        return h;
    }
}

internal sealed class RecordingObserver : IMilterSessionObserver
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public MilterViolation? Violation { get; private set; }

    public MilterConnectionEndReason? EndReason { get; private set; }

    public void ProtocolViolation(MilterConnectionInfo info, MilterViolation reason, string message)
    {
        Violation = reason;
        Lines.Enqueue($"violation {reason}: {message}");
    }

    public void ConnectionClosed(MilterConnectionInfo info, MilterConnectionEndReason reason, int messages)
    {
        EndReason = reason;
        Lines.Enqueue($"closed {reason} messages={messages}");
    }

    public void InternalError(MilterConnectionInfo info, Exception exception) => Lines.Enqueue("internal " + exception);

    public void ActionsMissing(MilterConnectionInfo info, MilterActions missing) => Lines.Enqueue($"missing {missing}");

    public void MessageTempfailedForMissingActions(MilterConnectionInfo info, string? queueId, MilterActions missing) => Lines.Enqueue($"tempfail-missing {queueId}");

    public void MessageTooLarge(MilterConnectionInfo info, string? queueId, long limit) => Lines.Enqueue($"too-large {queueId}");

    public void MessageOverLimit(MilterConnectionInfo info, string? queueId, MilterMessageLimit limit, MilterVerdict verdict, string detail) => Lines.Enqueue($"over-limit {limit} {queueId} {verdict}: {detail}");

    public void HandlerFailed(MilterConnectionInfo info, string? queueId, string stage, Exception exception) => Lines.Enqueue($"handler-failed {stage} {exception.GetType().Name}");

    public void MessageCompleted(MilterConnectionInfo info, string? queueId, MilterVerdict verdict, int recipients, long bodyBytes, int modifications) => Lines.Enqueue($"completed {queueId} {verdict}");
}
