using System.Collections.Concurrent;
using MilterSecureList.Cms;
using MilterSecureList.Directory;

namespace MilterSecureList.Filter;

/// <summary>
/// Keeps the parsed key objects the CMS layer needs across messages: importing a public key costs more than
/// wrapping a session key with it (docs/cms.md §11), so each member certificate is imported once. Everything is
/// dropped when the directory's generation changes (a CLI edit, a key rollover).
/// </summary>
internal sealed class RecipientKeyCache
{
    private const int MaxRecipients = 500_000;

    private readonly IListDirectory _directory;
    private readonly object _gate = new();
    private long _generation = long.MinValue;
    private ConcurrentDictionary<string, CmsRecipient> _recipients = new(StringComparer.Ordinal);
    private ConcurrentDictionary<string, IReadOnlyList<ListKey>> _listKeys = new(StringComparer.OrdinalIgnoreCase);

    public RecipientKeyCache(IListDirectory directory) => _directory = directory;

    public CmsRecipient GetRecipient(ExpandedMember member)
    {
        Refresh();
        var cert = member.Certificate ?? throw new InvalidOperationException($"member {member.Address} has no certificate");
        string key = cert.Thumbprint + (member.UseOaep ? "/oaep" : "/v15");
        if (_recipients.Count > MaxRecipients)
        {
            _recipients.Clear();
        }

        return _recipients.GetOrAdd(key, _ => CmsRecipient.FromCertificate(cert, member.UseOaep));
    }

    /// <summary>The list's key pairs, current first (its certificate is the one senders should use).</summary>
    public IReadOnlyList<ListKey> GetListKeys(string listAddress)
    {
        Refresh();
        return _listKeys.GetOrAdd(listAddress, address => _directory.GetListKeys(address)
            .OrderByDescending(k => k.IsCurrent)
            .Select(k => new ListKey(k.Certificate, k.PrivateKey, ownsKey: false))
            .ToList());
    }

    private void Refresh()
    {
        long generation = _directory.Generation;
        if (generation == Volatile.Read(ref _generation))
        {
            return;
        }

        lock (_gate)
        {
            if (generation != _generation)
            {
                // Old objects are not disposed here: a message being re-keyed right now may still hold them.
                // The ListKeys only borrow the private keys; the directory disposes its key pairs after a grace period.
                _recipients = new(StringComparer.Ordinal);
                _listKeys = new(StringComparer.OrdinalIgnoreCase);
                Volatile.Write(ref _generation, generation);
            }
        }
    }
}
