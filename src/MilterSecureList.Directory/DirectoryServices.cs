using MilterSecureList.Directory.Storage;

namespace MilterSecureList.Directory;

/// <summary>
/// The directory and key store opened together: opens the database (migrating it), refuses an insecure key
/// directory up front, and serves lookups through <see cref="CachingListDirectory"/>.
/// </summary>
public sealed class DirectoryServices : IDisposable
{
    private DirectoryServices(SqlDirectoryStore store, ListKeyStore keys, CachingListDirectory directory)
    {
        Store = store;
        Keys = keys;
        Directory = directory;
    }

    public SqlDirectoryStore Store { get; }

    public ListKeyStore Keys { get; }

    /// <summary>What the filter uses.</summary>
    public CachingListDirectory Directory { get; }

    /// <summary>
    /// Validates both option sections, opens the store, checks the key directory's mode and
    /// loads the list table. Throws <see cref="DirectoryException"/> with a one-line message.
    /// </summary>
    public static DirectoryServices Open(DirectoryOptions directoryOptions, KeysOptions keysOptions, TimeProvider time)
    {
        IReadOnlyList<string> problems = [.. directoryOptions.Validate(), .. keysOptions.Validate()];
        if (problems.Count > 0)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, problems[0]);
        }

        var keys = new ListKeyStore(keysOptions);
        keys.CheckDirectory();
        SqlDirectoryStore store = SqlDirectoryStore.Open(directoryOptions, time);
        try
        {
            var directory = new CachingListDirectory(new ListDirectory(store, keys, time), directoryOptions, time);
            return new DirectoryServices(store, keys, directory);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Directory.Dispose();
        Store.Dispose();
    }
}
