using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using MilterSecureList.Filter;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Handlers;

/// <summary>
/// Everything the <c>lists</c> handler owns for the life of the daemon: the cached directory, the owner
/// notifier and the processor. <see cref="Reload"/> applies a re-read milter.ini (SIGHUP) without dropping
/// connections: policy and notice settings are swapped in place, the directory is re-polled at once.
/// </summary>
public sealed class ListFilterRuntime : IAsyncDisposable
{
    private readonly SqlDirectoryStore _store;
    private readonly CachingListDirectory _directory;
    private readonly SmtpOwnerNotifier _notifier;
    private readonly ListMessageProcessor _processor;
    private readonly long _maxCmsBytes;

    private ListFilterRuntime(DaemonConfiguration configuration, ILoggerFactory loggers, FilterMetrics metrics)
    {
        DirectoryOptions directoryOptions = configuration.Get<DirectorySection>().Options;
        KeysOptions keysOptions = configuration.Get<KeysSection>().Options;
        _maxCmsBytes = configuration.Get<MilterOptions>().MaxMessageSize;

        // Refuse a key directory that others can read before serving a single message.
        var keys = new ListKeyStore(keysOptions);
        keys.CheckDirectory();
        _store = SqlDirectoryStore.Open(directoryOptions, TimeProvider.System);
        _directory = new CachingListDirectory(new ListDirectory(_store, keys, TimeProvider.System), directoryOptions, TimeProvider.System);
        _notifier = new SmtpOwnerNotifier(configuration.Get<NoticesSection>().Options, loggers.CreateLogger("MilterSecureList.Notices"));
        _processor = new ListMessageProcessor(_directory, WithLimits(configuration), _notifier, loggers.CreateLogger("MilterSecureList.Filter"), copies: new SmtpCopySubmitter());
        Factory = new ListFilterHandlerFactory(_processor, loggers.CreateLogger("MilterSecureList.Filter"), metrics);
    }

    public IMilterHandlerFactory Factory { get; }

    /// <summary>The list filter itself, for handlers that run it after another one ([Milter] Handlers = gateway, lists).</summary>
    public ListMessageProcessor Processor => _processor;

    public static ListFilterRuntime Open(DaemonConfiguration configuration, ILoggerFactory loggers, FilterMetrics metrics) =>
        new(configuration, loggers, metrics);

    /// <summary>SIGHUP: new policy values take effect for the next message; the directory is re-read now.
    /// [Milter] MaxMessageSize, like the listener, needs a restart.</summary>
    public void Reload(DaemonConfiguration configuration)
    {
        _processor.Policy = WithLimits(configuration);
        _directory.Refresh();
    }

    public async ValueTask DisposeAsync()
    {
        await _notifier.DisposeAsync().ConfigureAwait(false);
        _directory.Dispose();
        _store.Dispose();
    }

    private PolicyOptions WithLimits(DaemonConfiguration configuration)
    {
        PolicyOptions policy = configuration.Get<PolicySection>().Options;
        policy.MaxCmsBytes = _maxCmsBytes;
        return policy;
    }
}
