using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Storage;

namespace MilterSecureList.Directory;

/// <summary>
/// The one wiring of the directory database and the key directory, used by the daemon and the CLI alike
/// (docs/design.md, "Composition root"). <see cref="Open"/> validates [Directory] and [Keys], opens the list
/// store (creating or upgrading its schema) and the key store. What only some callers need is opened on first
/// use from the same options: the gateway tables (<see cref="Gateway"/>) and the daemon's cached view
/// (<see cref="Cache"/>), so a list verb of the CLI never creates gateway tables or starts a refresh timer.
/// </summary>
public sealed class DirectoryServices : IDisposable
{
    private readonly DirectoryOptions _options;
    private readonly TimeProvider _time;
    private readonly Lazy<GatewayStore> _gateway;
    private readonly Lazy<CachingListDirectory> _cache;

    private DirectoryServices(DirectoryOptions options, SqlDirectoryStore store, ListKeyStore keys, TimeProvider time)
    {
        _options = options;
        _time = time;
        Store = store;
        Keys = keys;
        Lists = new ListDirectory(store, keys, time);
        _gateway = new Lazy<GatewayStore>(() => GatewayStore.Open(_options, _time));
        _cache = new Lazy<CachingListDirectory>(() => new CachingListDirectory(Lists, _options, _time));
    }

    /// <summary>The list tables.</summary>
    public SqlDirectoryStore Store { get; }

    /// <summary>The list (and gateway user) private keys.</summary>
    public ListKeyStore Keys { get; }

    /// <summary>Lists, members and keys read straight from the database: what one CLI verb needs.</summary>
    public ListDirectory Lists { get; }

    /// <summary>The daemon's view of <see cref="Lists"/>: a snapshot re-read when the change counter moves.
    /// Created (and the list table loaded) on first use.</summary>
    public CachingListDirectory Cache => _cache.Value;

    /// <summary>The gateway's tables in the same database, created or upgraded on first use.</summary>
    public GatewayStore Gateway => _gateway.Value;

    public ListAdministration CreateAdministration() => new(Store, Keys, _time);

    public GatewayAdministration CreateGatewayAdministration() => new(Gateway, Keys, _time);

    /// <summary>
    /// Validates both option sections, opens the list store and, with <paramref name="requireKeyDirectory"/>
    /// (the daemon), refuses a missing key directory or one that others can read before a message is served.
    /// The CLI passes false: it creates the key directory with the first key it writes. Throws
    /// <see cref="DirectoryException"/> with a one-line message.
    /// </summary>
    public static DirectoryServices Open(DirectoryOptions directoryOptions, KeysOptions keysOptions, TimeProvider time, bool requireKeyDirectory = true)
    {
        IReadOnlyList<string> problems = [.. directoryOptions.Validate(), .. keysOptions.Validate()];
        if (problems.Count > 0)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, problems[0]);
        }

        var keys = new ListKeyStore(keysOptions);
        if (requireKeyDirectory)
        {
            keys.CheckDirectory();
        }

        return new DirectoryServices(directoryOptions, SqlDirectoryStore.Open(directoryOptions, time), keys, time);
    }

    public void Dispose()
    {
        if (_cache.IsValueCreated)
        {
            _cache.Value.Dispose();
        }

        if (_gateway.IsValueCreated)
        {
            _gateway.Value.Dispose();
        }

        Store.Dispose();
    }
}
