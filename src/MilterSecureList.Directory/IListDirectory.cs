namespace MilterSecureList.Directory;

/// <summary>
/// What the filter asks the directory. Use <see cref="CachingListDirectory"/> in the daemon: it
/// answers from memory and notices CLI changes within <see cref="DirectoryOptions.CacheRefreshSeconds"/>.
/// </summary>
public interface IListDirectory
{
    /// <summary>Case-insensitive lookup of a list address. Never throws for "not a list".</summary>
    bool TryGetList(string address, out MailingList list);

    /// <summary>
    /// Recursive, de-duplicated expansion. Throws <see cref="DirectoryException"/> for an unknown
    /// list (<see cref="DirectoryError.UnknownList"/>), a cycle or too deep nesting, or when the
    /// database is unavailable.
    /// </summary>
    ExpandedList Expand(string listAddress);

    /// <summary>
    /// The list's key pairs (current first, then other active, then retired), private keys loaded
    /// from their files after a permission check.
    /// </summary>
    IReadOnlyList<ListKeyPair> GetListKeys(string listAddress);

    /// <summary>Changes whenever the directory changed (monotonic for one database).</summary>
    long Generation { get; }
}
