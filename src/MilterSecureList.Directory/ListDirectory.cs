using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory.Storage;

namespace MilterSecureList.Directory;

/// <summary>
/// <see cref="IListDirectory"/> straight from the database: every call reads. The daemon wraps
/// it in <see cref="CachingListDirectory"/>; the CLI and tests use it directly.
/// </summary>
public sealed class ListDirectory : IListDirectory
{
    /// <summary>Nesting deeper than this is refused (a list of lists of lists ...).</summary>
    public const int DefaultMaxDepth = 8;

    private readonly SqlDirectoryStore _store;
    private readonly ListKeyStore _keys;
    private readonly TimeProvider _time;
    private readonly int _maxDepth;

    public ListDirectory(SqlDirectoryStore store, ListKeyStore keys, TimeProvider time, int maxDepth = DefaultMaxDepth)
    {
        _store = store;
        _keys = keys;
        _time = time;
        _maxDepth = maxDepth;
    }

    public long Generation => _store.GetGeneration();

    public IReadOnlyList<MailingList> GetLists() => _store.GetLists();

    /// <summary>The stored members of one list (no expansion).</summary>
    public IReadOnlyList<ListMember> MembersOf(string listAddress) => _store.GetMembers(listAddress);

    public bool TryGetList(string address, out MailingList list) => _store.TryGetList(address, out list);

    public ExpandedList Expand(string listAddress)
    {
        Dictionary<string, MailingList> lists = _store.GetLists().ToDictionary(l => EmailAddress.Normalize(l.Address), StringComparer.Ordinal);
        return Expand(listAddress, lists, _store.GetMembers);
    }

    /// <summary>
    /// The expansion algorithm, separated from storage. Direct members of a list come before the
    /// members of its nested lists, so a person on both is attributed to the outer list. A cycle
    /// (refused at <c>member add</c>, checked again here) or nesting deeper than the limit throws.
    /// </summary>
    public ExpandedList Expand(string listAddress, IReadOnlyDictionary<string, MailingList> listsByNorm, Func<string, IReadOnlyList<ListMember>> membersOf)
    {
        if (!listsByNorm.TryGetValue(EmailAddress.Normalize(listAddress), out MailingList? top))
        {
            throw new DirectoryException(DirectoryError.UnknownList, $"no list {listAddress} in the directory");
        }

        DateTimeOffset now = _time.GetUtcNow();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var members = new List<ExpandedMember>();
        var problems = new List<string>();
        var path = new List<string>();
        Visit(top, 0);
        return new ExpandedList(top, members, problems);

        void Visit(MailingList list, int depth)
        {
            string norm = EmailAddress.Normalize(list.Address);
            int loop = path.IndexOf(norm);
            if (loop >= 0)
            {
                throw new DirectoryException(
                    DirectoryError.Cycle,
                    $"nested lists form a cycle: {string.Join(" -> ", path.Skip(loop).Append(norm))}");
            }

            if (depth > _maxDepth)
            {
                throw new DirectoryException(
                    DirectoryError.DepthExceeded,
                    $"lists nested deeper than {_maxDepth}: {string.Join(" -> ", path.Append(norm))}");
            }

            path.Add(norm);
            bool listSelfCopy = !string.Equals(list.GetOption(ListOptionKeys.SelfCopy) ?? top.GetOption(ListOptionKeys.SelfCopy), "no", StringComparison.Ordinal);
            var nested = new List<(MailingList List, bool Delivery)>();
            foreach (ListMember member in membersOf(list.Address))
            {
                string memberNorm = EmailAddress.Normalize(member.Address);
                if (listsByNorm.TryGetValue(memberNorm, out MailingList? child))
                {
                    nested.Add((child, member.DeliveryEnabled));
                    continue;
                }

                if (!seen.Add(memberNorm))
                {
                    continue;
                }

                ExpandedMember expanded = ExpandMember(member, list.Address, listSelfCopy, now);
                if (expanded.Problem is not null)
                {
                    problems.Add($"{member.Address}: {expanded.Problem}");
                }

                members.Add(expanded);
            }

            foreach ((MailingList child, bool delivery) in nested)
            {
                if (!delivery)
                {
                    // Delivery switched off for a whole nested list: its members get no copies from here.
                    continue;
                }

                Visit(child, depth + 1);
            }

            path.RemoveAt(path.Count - 1);
        }
    }

    private static ExpandedMember ExpandMember(ListMember member, string viaList, bool listSelfCopy, DateTimeOffset now)
    {
        bool selfCopy = member.SelfCopy ?? listSelfCopy;
        MemberCertificate? best = member.BestCertificate(now, out CertificateCheck check);
        return new ExpandedMember(member.Address, best?.Der, member.UseOaep, selfCopy, member.DeliveryEnabled, check.Status, check.Problem, viaList);
    }

    public IReadOnlyList<ListKeyPair> GetListKeys(string listAddress)
    {
        IReadOnlyList<ListKeyRecord> records = _store.GetListKeys(listAddress);
        var pairs = new List<ListKeyPair>(records.Count);
        try
        {
            foreach (ListKeyRecord record in records)
            {
                X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(record.Certificate);
                try
                {
                    AsymmetricAlgorithm key = _keys.ReadKey(record.KeyFile, certificate);
                    pairs.Add(new ListKeyPair(record.Id, certificate, key, record.IsCurrent, record.IsRetired, record.CreatedAt));
                }
                catch
                {
                    certificate.Dispose();
                    throw;
                }
            }
        }
        catch
        {
            foreach (ListKeyPair pair in pairs)
            {
                pair.Dispose();
            }

            throw;
        }

        return pairs;
    }
}
