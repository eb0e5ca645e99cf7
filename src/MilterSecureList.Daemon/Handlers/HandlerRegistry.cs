using MilterSecureList.Daemon.Options;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>
/// The one place that maps [Milter] Handler to a handler factory. Adding a handler is one name in
/// <see cref="Names"/> and one case in <see cref="Create"/>.
/// </summary>
public static class HandlerRegistry
{
    public static readonly string[] Names = ["lists", "passthrough", "echo"];

    public static IMilterHandlerFactory Create(MilterOptions options) => options.Handler switch
    {
        "passthrough" => new PassthroughHandlerFactory(),
        "echo" => new EchoHandlerFactory(options.EchoRecipients),
        // "lists" => new ListRewrapHandlerFactory(...),  // wired by the list filter (issue 2 follow-up)
        _ => throw new ConfigurationException($"milter.ini: [Milter] Handler: '{options.Handler}' is not available in this build"),
    };
}
