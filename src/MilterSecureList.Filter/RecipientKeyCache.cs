using System.Collections.Concurrent;
using MilterSecureList.Cms;
using MilterSecureList.Directory;

namespace MilterSecureList.Filter;

/// <summary>
/// Keeps what the CMS layer needs per member across messages: the recipient identifier and public key read from the
/// certificate's DER once (about 0.5 KB, no X.509 or key object; the key objects themselves live in the CMS layer's
/// bounded cache, docs/design.md "Lists of 100,000 members"), and the list key pairs. Everything is dropped when the
/// directory's generation changes (a CLI edit, a key rollover).
/// </summary>
internal sealed class RecipientKeyCache
{
    // Members whose recipient is kept (~0.3 KB each besides the certificate the expansion holds). Past that, e.g. for
    // a 100,000-member list, the recipient is read again from the certificate for each message: a few microseconds
    // against that member's RSA operation (~26 µs), and no memory kept for it.
    private const int MaxRecipients = 20_000;

    private readonly IListDirectory _directory;
    private readonly object _gate = new();
    private long _generation = long.MinValue;
    // Keyed by the expanded member: the cached expansion hands out the same instances until the generation changes.
    private ConcurrentDictionary<ExpandedMember, CmsRecipient> _recipients = new(ReferenceEqualityComparer.Instance);
    private ConcurrentDictionary<string, IReadOnlyList<ListKey>> _listKeys = new(StringComparer.OrdinalIgnoreCase);

    public RecipientKeyCache(IListDirectory directory) => _directory = directory;

    public CmsRecipient GetRecipient(ExpandedMember member)
    {
        Refresh();
        if (_recipients.TryGetValue(member, out CmsRecipient? known))
        {
            return known;
        }

        ReadOnlyMemory<byte> der = member.CertificateDer ?? throw new InvalidOperationException($"member {member.Address} has no certificate");
        return _recipients.Count >= MaxRecipients
            ? CmsRecipient.FromDer(der, member.UseOaep)
            : _recipients.GetOrAdd(member, m => CmsRecipient.FromDer(der, m.UseOaep));
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
                _recipients = new(ReferenceEqualityComparer.Instance);
                _listKeys = new(StringComparer.OrdinalIgnoreCase);
                Volatile.Write(ref _generation, generation);
            }
        }
    }
}
