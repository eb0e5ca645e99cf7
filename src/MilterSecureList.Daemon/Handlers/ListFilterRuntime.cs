using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Hosting;
using MilterSecureList.Daemon.Notices;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Directory;
using MilterSecureList.Filter;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>
/// Everything the <c>lists</c> handler owns for the life of the daemon: the owner notifier and the processor, on
/// the cached directory of the shared <see cref="DirectoryServices"/>. <see cref="Reload"/> applies a re-read
/// milter.ini (SIGHUP) without dropping connections: policy values are swapped in place, the directory is
/// re-polled at once.
/// </summary>
public sealed class ListFilterRuntime : IAsyncDisposable
{
    private readonly CachingListDirectory _directory;
    private readonly SmtpOwnerNotifier _notifier;
    private readonly ListMessageProcessor _processor;
    private readonly long _maxCmsBytes;
    private readonly KeyRelease.HttpKeyDepository? _depository;

    private ListFilterRuntime(DaemonConfiguration configuration, DirectoryServices directory, ILoggerFactory loggers, FilterMetrics metrics)
    {
        _maxCmsBytes = configuration.Get<MilterOptions>().MaxMessageSize;
        _directory = directory.Cache;
        _notifier = new SmtpOwnerNotifier(configuration.Get<NoticesSection>().Options, loggers.CreateLogger("MilterSecureList.Notices"));
        _depository = configuration.Get<KeyReleaseSection>().CreateDepository();
        _processor = new ListMessageProcessor(_directory, WithLimits(configuration), _notifier, loggers.CreateLogger("MilterSecureList.Filter"), copies: new SmtpCopySubmitter())
        {
            KeyDepository = _depository,
        };
        Factory = new ListFilterHandlerFactory(_processor, loggers.CreateLogger("MilterSecureList.Filter"), metrics);
    }

    public IMilterHandlerFactory Factory { get; }

    /// <summary>The list filter itself, for handlers that run it after another one ([Milter] Handlers = gateway, lists).</summary>
    public ListMessageProcessor Processor => _processor;

    public static ListFilterRuntime Open(DaemonConfiguration configuration, DirectoryServices directory, ILoggerFactory loggers, FilterMetrics metrics) =>
        new(configuration, directory, loggers, metrics);

    /// <summary>SIGHUP: new policy values take effect for the next message; the directory is re-read now.
    /// [Milter] MaxMessageSize, like the listener, needs a restart.</summary>
    public void Reload(DaemonConfiguration configuration)
    {
        _processor.Policy = WithLimits(configuration);
        _directory.Refresh();
    }

    /// <summary>Sends what notices are queued and closes the key-server client; the directory belongs to
    /// <see cref="DirectoryServices"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        await _notifier.DisposeAsync().ConfigureAwait(false);
        _depository?.Dispose();
    }

    private PolicyOptions WithLimits(DaemonConfiguration configuration)
    {
        PolicyOptions policy = configuration.Get<PolicySection>().Options;
        policy.MaxCmsBytes = _maxCmsBytes;
        return policy;
    }
}
