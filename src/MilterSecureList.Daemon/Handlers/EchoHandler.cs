using System.Globalization;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>Creates <see cref="EchoHandler"/>s.</summary>
public sealed class EchoHandlerFactory(int recipients) : IMilterHandlerFactory
{
    private readonly string[] _addresses = Enumerable.Range(1, recipients).Select(i => "<echo" + i.ToString(CultureInfo.InvariantCulture) + "@echo.invalid>").ToArray();

    public IMilterHandler Create(MilterConnectionInfo info) => new EchoHandler(_addresses);
}

/// <summary>
/// The shape of work the list filter does, without crypto: at end-of-message it replaces the body with itself,
/// deletes the first recipient and adds <c>EchoRecipients</c> recipients (echo1@echo.invalid ...).
/// For protocol tests and benchmarks.
/// </summary>
public sealed class EchoHandler(string[] addresses) : IMilterHandler
{
    private static readonly MilterHandlerCapabilities s_capabilities = new()
    {
        RequiredActions = MilterActions.ChangeBody | MilterActions.AddRecipient | MilterActions.DeleteRecipient,
        NeedsHeaders = false,
    };

    public MilterHandlerCapabilities Capabilities => s_capabilities;

    public ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken)
    {
        message.ReplaceBody(message.Body.OpenRead());
        if (message.Recipients.Count > 0)
        {
            message.DeleteRecipient(message.Recipients[0].Address);
        }

        foreach (string a in addresses)
        {
            message.AddRecipient(a);
        }

        return new(MilterVerdict.Continue);
    }
}
