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
    private readonly PolicyOptions _policy;

    private ListFilterRuntime(DaemonConfiguration configuration, ILoggerFactory loggers, FilterMetrics metrics)
    {
        DirectoryOptions directoryOptions = configuration.Get<DirectorySection>().Options;
        KeysOptions keysOptions = configuration.Get<KeysSection>().Options;
        _policy = Copy(configuration.Get<PolicySection>().Options, new PolicyOptions());
        _policy.MaxCmsBytes = configuration.Get<MilterOptions>().MaxMessageSize;

        // Refuse a key directory that others can read before serving a single message (issue 4 item 3).
        var keys = new ListKeyStore(keysOptions);
        keys.CheckDirectory();
        _store = SqlDirectoryStore.Open(directoryOptions, TimeProvider.System);
        _directory = new CachingListDirectory(new ListDirectory(_store, keys, TimeProvider.System), directoryOptions, TimeProvider.System);
        _notifier = new SmtpOwnerNotifier(configuration.Get<NoticesSection>().Options, loggers.CreateLogger("MilterSecureList.Notices"));
        var processor = new ListMessageProcessor(_directory, _policy, _notifier, loggers.CreateLogger("MilterSecureList.Filter"));
        Factory = new ListFilterHandlerFactory(processor, loggers.CreateLogger("MilterSecureList.Filter"), metrics);
    }

    public IMilterHandlerFactory Factory { get; }

    public static ListFilterRuntime Open(DaemonConfiguration configuration, ILoggerFactory loggers, FilterMetrics metrics) =>
        new(configuration, loggers, metrics);

    /// <summary>SIGHUP: new policy values take effect for the next message; the directory is re-read now.</summary>
    public void Reload(DaemonConfiguration configuration)
    {
        long max = _policy.MaxCmsBytes;
        Copy(configuration.Get<PolicySection>().Options, _policy);
        _policy.MaxCmsBytes = max;
        _directory.Refresh();
    }

    public async ValueTask DisposeAsync()
    {
        await _notifier.DisposeAsync().ConfigureAwait(false);
        _directory.Dispose();
        _store.Dispose();
    }

    private static PolicyOptions Copy(PolicyOptions from, PolicyOptions to)
    {
        to.Plaintext = from.Plaintext;
        to.MissingCertificate = from.MissingCertificate;
        to.NonMember = from.NonMember;
        to.RejectNonMemberAtRcpt = from.RejectNonMemberAtRcpt;
        to.SenderCopy = from.SenderCopy;
        to.ListHeaders = from.ListHeaders;
        to.RecipientDelimiter = from.RecipientDelimiter;
        to.CertificateUrl = from.CertificateUrl;
        to.ProgressInterval = from.ProgressInterval;
        return to;
    }
}
