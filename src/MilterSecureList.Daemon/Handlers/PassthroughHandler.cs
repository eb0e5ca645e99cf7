using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>Accepts every message unchanged; asks the MTA for nothing but end-of-message.</summary>
public sealed class PassthroughHandlerFactory : IMilterHandlerFactory
{
    private static readonly PassthroughHandler s_handler = new();

    public IMilterHandler Create(MilterConnectionInfo info) => s_handler; // stateless: one instance serves all
}

public sealed class PassthroughHandler : IMilterHandler
{
    public MilterHandlerCapabilities Capabilities { get; } = new() { NeedsBody = false, NeedsHeaders = false };

    public ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken) => new(MilterVerdict.Continue);
}
