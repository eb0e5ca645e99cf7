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
    private readonly List<TrustAnchors> _anchors = [];
    private readonly ILogger _logger;
    private readonly GatewayNoticeMailer _notices;
    private readonly MilterSecureList.KeyRelease.ReleaseFetcher _fetcher;

    private GatewayRuntime(DaemonConfiguration configuration, DirectoryServices services, ILoggerFactory loggers)
    {
        GatewayOptions options = configuration.Get<GatewaySection>().Options;
        _anchors.Add(TrustAnchors.Load(options.TrustAnchors));
        _lists = services.Store;
        // Lookups are answered from memory while the change counter stands still (re-read every CacheRefreshSeconds).
        var changes = new DirectoryChangeCounter(services.Store.GetGeneration, TimeSpan.FromSeconds(configuration.Get<DirectorySection>().Options.CacheRefreshSeconds), TimeProvider.System);
        _directory = new StoreGatewayDirectory(services.Gateway, services.Keys, ListCertificate, changes);
        _logger = loggers.CreateLogger("MilterSecureList.Gateway");
        _notices = new GatewayNoticeMailer(configuration.Get<NoticesSection>().Options, _logger);
        _fetcher = configuration.Get<KeyReleaseSection>().CreateReleaseFetcher(TimeProvider.System);
        Processor = new GatewayProcessor(_directory, options, _anchors[0], TimeProvider.System, _logger, _notices) { KeyRelease = _fetcher };
        Factory = new GatewayHandlerFactory(Processor, _logger);
    }

    public GatewayProcessor Processor { get; }

    public GatewayHandlerFactory Factory { get; }

    public static GatewayRuntime Open(DaemonConfiguration configuration, DirectoryServices services, ILoggerFactory loggers) => new(configuration, services, loggers);

    /// <summary>
    /// SIGHUP: the re-read [Gateway] section (policies, AuthservId, InvalidSignature, Harvest, DomainPolicy) and its
    /// TrustAnchors file apply to the next MAIL FROM. A transaction already under way keeps the decisions made at
    /// its RCPTs. The directory and key settings, like the listener, need a restart.
    /// </summary>
    public void Reload(DaemonConfiguration configuration)
    {
        GatewayOptions options = configuration.Get<GatewaySection>().Options;
        // Load first: a TrustAnchors file that cannot be read leaves the running settings as they were.
        TrustAnchors anchors = TrustAnchors.Load(options.TrustAnchors);
        lock (_anchors)
        {
            _anchors.Add(anchors);
        }

        Processor.UseTrustAnchors(anchors);
        Processor.Options = options;
        _directory.Invalidate();
    }

    private byte[]? ListCertificate(string address) =>
        _lists.TryGetList(address, out _) ? _lists.GetListKeys(address).FirstOrDefault(k => k.IsCurrent && !k.IsRetired)?.Certificate : null;

    public void Dispose()
    {
        // Notices already queued are sent (each within 30 s) before the directory goes away; the stores belong to
        // DirectoryServices, shared with the lists handler.
        _notices.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _fetcher.Dispose();
        _directory.Dispose();
        foreach (TrustAnchors anchors in _anchors)
        {
            anchors.Dispose();
        }
    }
}
