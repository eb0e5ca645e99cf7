using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Hosting;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Directory;
using MilterSecureList.Filter;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>
/// The one place that maps [Milter] Handler to a handler factory. Adding a handler is one name in
/// <see cref="Names"/> and one case in <see cref="Create"/>.
/// </summary>
public static class HandlerRegistry
{
    public static readonly string[] Names = ["lists", "passthrough", "echo", "gateway"];

    /// <summary>[Milter] Handlers: several handlers on one message, in this order (docs/gateway.md).</summary>
    public static readonly string[] Chains = ["gateway", "lists", "gateway, lists"];

    /// <summary>The handler name for a [Milter] Handlers value ("gateway,lists" for the chain), or null.</summary>
    public static string? ParseChain(string value)
    {
        string normalized = string.Join(",", value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToLowerInvariant();
        return normalized is "gateway" or "lists" or GatewayListsName ? normalized : null;
    }

    private const string GatewayListsName = "gateway,lists";

    /// <summary>Whether the configured handler (a <see cref="ParseChain"/> result or a single name) runs the list filter.</summary>
    public static bool UsesLists(string handler) => handler is "lists" or GatewayListsName;

    /// <summary>Whether the configured handler runs the gateway.</summary>
    public static bool UsesGateway(string handler) => handler is "gateway" or GatewayListsName;

    public static IMilterHandlerFactory Create(DaemonConfiguration configuration, IServiceProvider services)
    {
        MilterOptions options = configuration.Get<MilterOptions>();
        return options.Handler switch
        {
            "passthrough" => new PassthroughHandlerFactory(),
            "echo" => new EchoHandlerFactory(options.EchoRecipients),
            "lists" => services.GetRequiredService<ListFilterRuntime>().Factory,
            "gateway" => services.GetRequiredService<GatewayRuntime>().Factory,
            GatewayListsName => new GatewayListsHandlerFactory(services.GetRequiredService<GatewayRuntime>().Factory, services.GetRequiredService<ListFilterRuntime>()),
            _ => throw new ConfigurationException($"milter.ini: [Milter] Handler: '{options.Handler}' is not available in this build"),
        };
    }

    /// <summary>Registers what the handlers need; the lists runtime is created only when it is used.
    /// <paramref name="handlerFactory"/> replaces the configured handler (in-process tests).</summary>
    public static void AddHandlers(IServiceCollection services, DaemonConfiguration configuration, IMilterHandlerFactory? handlerFactory = null)
    {
        services.AddSingleton<FilterMetrics>(_ => new FilterMetrics { SpoolBytes = () => MessageBodySpool.TotalSpooledBytes });

        // One directory wiring for every handler (docs/design.md, "Composition root"); the container disposes it
        // after the runtimes that use it. The daemon refuses an unsafe or missing key directory here, at start-up.
        services.AddSingleton(_ => DirectoryServices.Open(
            configuration.Get<DirectorySection>().Options, configuration.Get<KeysSection>().Options, TimeProvider.System));
        services.AddSingleton(sp => ListFilterRuntime.Open(
            configuration, sp.GetRequiredService<DirectoryServices>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<FilterMetrics>()));
        services.AddSingleton(sp => GatewayRuntime.Open(configuration, sp.GetRequiredService<DirectoryServices>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton(sp => handlerFactory ?? Create(configuration, sp));
    }
}
