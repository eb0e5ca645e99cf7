using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Storage;
using MilterSecureList.Gateway;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>
/// Everything the <c>gateway</c> handler owns for the life of the daemon: the gateway tables, the key directory,
/// the trust anchors and the processor. Encrypted lists count as correspondents whose certificate is the list's
/// current one, so a gateway user's plain post to a list is encrypted to it (and re-keyed by the lists handler).
/// </summary>
public sealed class GatewayRuntime : IDisposable
{
    private readonly GatewayStore _store;
    private readonly SqlDirectoryStore _lists;
    private readonly StoreGatewayDirectory _directory;
    private readonly TrustAnchors _anchors;

    private GatewayRuntime(DaemonConfiguration configuration, ILoggerFactory loggers)
    {
        DirectoryOptions directoryOptions = configuration.Get<DirectorySection>().Options;
        GatewayOptions options = configuration.Get<GatewaySection>().Options;
        var keys = new ListKeyStore(configuration.Get<KeysSection>().Options);
        // Refuse a key directory that others can read before serving a single message.
        keys.CheckDirectory();
        _anchors = TrustAnchors.Load(options.TrustAnchors);
        _store = GatewayStore.Open(directoryOptions, TimeProvider.System);
        _lists = SqlDirectoryStore.Open(directoryOptions, TimeProvider.System);
        _directory = new StoreGatewayDirectory(_store, keys, ListCertificate);
        ILogger logger = loggers.CreateLogger("MilterSecureList.Gateway");
        Processor = new GatewayProcessor(_directory, options, _anchors, TimeProvider.System, logger);
        Factory = new GatewayHandlerFactory(Processor, logger);
    }

    public GatewayProcessor Processor { get; }

    public GatewayHandlerFactory Factory { get; }

    public static GatewayRuntime Open(DaemonConfiguration configuration, ILoggerFactory loggers) => new(configuration, loggers);

    private byte[]? ListCertificate(string address) =>
        _lists.TryGetList(address, out _) ? _lists.GetListKeys(address).FirstOrDefault(k => k.IsCurrent && !k.IsRetired)?.Certificate : null;

    public void Dispose()
    {
        _directory.Dispose();
        _store.Dispose();
        _lists.Dispose();
        _anchors.Dispose();
    }
}
