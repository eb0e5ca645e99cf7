using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Storage;
using MilterSecureList.Gateway;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>
/// Everything the <c>gateway</c> handler owns for the life of the daemon: the trust anchors, the user keys read so
/// far and the processor, on the gateway tables and key directory of the shared <see cref="DirectoryServices"/>. Encrypted lists count as correspondents whose certificate is the list's
/// current one, so a gateway user's plain post to a list is encrypted to it (and re-keyed by the lists handler).
/// </summary>
public sealed class GatewayRuntime : IDisposable
{
    private readonly SqlDirectoryStore _lists;
    private readonly StoreGatewayDirectory _directory;
    private readonly TrustAnchors _anchors;

    private GatewayRuntime(DaemonConfiguration configuration, DirectoryServices services, ILoggerFactory loggers)
    {
        GatewayOptions options = configuration.Get<GatewaySection>().Options;
        _anchors = TrustAnchors.Load(options.TrustAnchors);
        _lists = services.Store;
        _directory = new StoreGatewayDirectory(services.Gateway, services.Keys, ListCertificate);
        ILogger logger = loggers.CreateLogger("MilterSecureList.Gateway");
        Processor = new GatewayProcessor(_directory, options, _anchors, TimeProvider.System, logger);
        Factory = new GatewayHandlerFactory(Processor, logger);
    }

    public GatewayProcessor Processor { get; }

    public GatewayHandlerFactory Factory { get; }

    public static GatewayRuntime Open(DaemonConfiguration configuration, DirectoryServices services, ILoggerFactory loggers) => new(configuration, services, loggers);

    private byte[]? ListCertificate(string address) =>
        _lists.TryGetList(address, out _) ? _lists.GetListKeys(address).FirstOrDefault(k => k.IsCurrent && !k.IsRetired)?.Certificate : null;

    public void Dispose()
    {
        // The stores belong to DirectoryServices, shared with the lists handler.
        _directory.Dispose();
        _anchors.Dispose();
    }
}
