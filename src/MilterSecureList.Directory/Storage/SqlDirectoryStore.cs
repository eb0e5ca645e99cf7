using System.Data;
using System.Data.Common;

namespace MilterSecureList.Directory.Storage;

/// <summary>
/// The directory's persistence: one implementation over ADO.NET for SQLite and PostgreSQL
/// (same schema, same SQL). Every write runs in one transaction that also bumps
/// <c>directory_generation</c>, which running daemons poll. Database errors surface as
/// <see cref="DirectoryException"/> with <see cref="DirectoryError.Unavailable"/>.
/// </summary>
public sealed class SqlDirectoryStore : IDisposable
{
    private readonly SqlDialect _dialect;
    private readonly TimeProvider _time;

    public SqlDirectoryStore(SqlDialect dialect, TimeProvider time)
    {
        _dialect = dialect;
        _time = time;
        Migrate();
    }

    public static SqlDirectoryStore Open(DirectoryOptions options, TimeProvider time)
    {
        SqlDialect dialect = SqlDialect.Create(options);
        try
        {
            return new SqlDirectoryStore(dialect, time);
        }
        catch
        {
            dialect.Dispose();
            throw;
        }
    }

    public DirectoryProvider Provider => _dialect.Provider;

    public void Dispose() => _dialect.Dispose();

    // ---- schema -------------------------------------------------------------------------

    private void Migrate() => Run(connection =>
    {
        _dialect.Prepare(connection);
        SchemaMigrator.Apply(connection, _dialect, "directory", "schema_version", DirectoryMigrations.All);
        return 0;
    });

    public int SchemaVersion => Run(c => Convert.ToInt32(Scalar(c, null, "SELECT MAX(version) FROM schema_version")));

    // ---- reads --------------------------------------------------------------------------

    /// <summary>The change counter; one indexed single-row read.</summary>
    public long GetGeneration() =>
        Run(c => Convert.ToInt64(Scalar(c, null, "SELECT generation FROM directory_generation WHERE id = 1")));

    public IReadOnlyList<MailingList> GetLists() => Run(c => ReadLists(c, null, null));

    public bool TryGetList(string address, out MailingList list)
    {
        IReadOnlyList<MailingList> found = Run(c => ReadLists(c, null, EmailAddress.Normalize(address)));
        list = found.Count == 1 ? found[0] : null!;
        return found.Count == 1;
    }

    public MailingList GetList(string address) =>
        TryGetList(address, out MailingList list) ? list : throw UnknownList(address);

    /// <summary>Member count per list (normalized address).</summary>
    public IReadOnlyDictionary<string, int> GetMemberCounts() => Run(c =>
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        using DbCommand cmd = Command(c, null, "SELECT l.address_norm, COUNT(m.id) FROM lists l LEFT JOIN members m ON m.list_id = l.id GROUP BY l.address_norm");
        using DbDataReader r = cmd.ExecuteReader();
        while (r.Read())
        {
            counts[r.GetString(0)] = Convert.ToInt32(r.GetValue(1));
        }

        return counts;
    });

    /// <summary>The list's members with their certificates, in insertion order.</summary>
    /// <remarks>
    /// The rows are read in the order the database finds them and put in insertion order here: an ORDER BY over the
    /// join made SQLite sort every row, certificate bytes included, in a temporary B-tree (a 100,000-member list spent
    /// most of its cold expansion there; docs/design.md, "Lists of 100,000 members").
    /// </remarks>
    public IReadOnlyList<ListMember> GetMembers(string listAddress) => Run(c =>
    {
        long listId = RequireListId(c, null, listAddress);
        using DbCommand cmd = Command(
            c,
            null,
            """
            SELECT m.id, m.address, m.use_oaep, m.delivery_enabled, m.self_copy, mc.id, mc.der, mc.not_before, mc.not_after, mc.key_problem
            FROM members m LEFT JOIN member_certificates mc ON mc.member_id = m.id
            WHERE m.list_id = @list
            """,
            ("list", listId));
        using DbDataReader r = cmd.ExecuteReader();
        // One ListMember per member as its first row arrives; the rare member with several certificates is rebuilt
        // with each further one. Nothing else per row: on a large list every object here is alive until the end.
        var members = new List<ListMember>();
        var ids = new List<long>();
        var index = new Dictionary<long, int>();
        var firstCertificateIds = new List<long>();
        Dictionary<long, List<(long Id, MemberCertificate Certificate)>>? several = null;
        while (r.Read())
        {
            long id = r.GetInt64(0);
            MemberCertificate? certificate = r.IsDBNull(5) ? null : new MemberCertificate(
                (byte[])r.GetValue(6),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(7)),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(8)),
                r.IsDBNull(9) ? null : r.GetString(9));
            if (index.TryGetValue(id, out int at))
            {
                several ??= [];
                if (!several.TryGetValue(id, out List<(long Id, MemberCertificate Certificate)>? all))
                {
                    all = [(firstCertificateIds[at], members[at].Certificates[0])];
                    several.Add(id, all);
                }

                all.Add((r.GetInt64(5), certificate!));
                all.Sort((a, b) => a.Id.CompareTo(b.Id));
                ListMember first = members[at];
                members[at] = new ListMember(first.Address, all.ConvertAll(c => c.Certificate), first.UseOaep, first.DeliveryEnabled, first.SelfCopy);
                continue;
            }

            index.Add(id, members.Count);
            ids.Add(id);
            firstCertificateIds.Add(certificate is null ? 0 : r.GetInt64(5));
            members.Add(new ListMember(
                r.GetString(1),
                certificate is null ? [] : [certificate],
                r.GetInt64(2) != 0,
                r.GetInt64(3) != 0,
                r.IsDBNull(4) ? null : r.GetInt64(4) != 0));
        }

        ListMember[] ordered = [.. members];
        long[] keys = [.. ids];
        Array.Sort(keys, ordered);
        return (IReadOnlyList<ListMember>)ordered;
    });

    /// <summary>The normalized addresses of the list's members (no certificates): what a bulk import checks duplicates against.</summary>
    public IReadOnlySet<string> GetMemberAddresses(string listAddress) => Run(c =>
    {
        long listId = RequireListId(c, null, listAddress);
        using DbCommand cmd = Command(c, null, "SELECT address_norm FROM members WHERE list_id = @list", ("list", listId));
        return (IReadOnlySet<string>)new HashSet<string>(ReadStrings(cmd), StringComparer.Ordinal);
    });

    /// <summary>The normalized addresses of every list, in one read.</summary>
    public IReadOnlySet<string> GetListAddresses() => Run(c =>
    {
        using DbCommand cmd = Command(c, null, "SELECT address_norm FROM lists");
        return (IReadOnlySet<string>)new HashSet<string>(ReadStrings(cmd), StringComparer.Ordinal);
    });

    /// <summary>Lists that have ADDRESS as a member (normalized addresses).</summary>
    public IReadOnlyList<string> GetListsContaining(string address) => Run(c =>
    {
        using DbCommand cmd = Command(
            c,
            null,
            "SELECT l.address FROM members m JOIN lists l ON l.id = m.list_id WHERE m.address_norm = @a ORDER BY l.address_norm",
            ("a", EmailAddress.Normalize(address)));
        return (IReadOnlyList<string>)ReadStrings(cmd);
    });

    /// <summary>Nested-list edges: (list, member list), both normalized.</summary>
    public IReadOnlyList<(string List, string Member)> GetNestingEdges() => Run(c =>
    {
        using DbCommand cmd = Command(
            c,
            null,
            "SELECT l.address_norm, m.address_norm FROM members m JOIN lists l ON l.id = m.list_id JOIN lists n ON n.address_norm = m.address_norm");
        using DbDataReader r = cmd.ExecuteReader();
        var edges = new List<(string, string)>();
        while (r.Read())
        {
            edges.Add((r.GetString(0), r.GetString(1)));
        }

        return (IReadOnlyList<(string, string)>)edges;
    });

    /// <summary>The list's keys: current first, then active by age, then retired.</summary>
    public IReadOnlyList<ListKeyRecord> GetListKeys(string listAddress) => Run(c =>
    {
        long listId = RequireListId(c, null, listAddress);
        using DbCommand cmd = Command(
            c,
            null,
            "SELECT id, certificate, key_file, is_current, is_retired, created_at FROM list_keys WHERE list_id = @list ORDER BY is_current DESC, is_retired ASC, created_at DESC, id DESC",
            ("list", listId));
        using DbDataReader r = cmd.ExecuteReader();
        var keys = new List<ListKeyRecord>();
        while (r.Read())
        {
            keys.Add(new ListKeyRecord(
                Convert.ToInt64(r.GetValue(0)),
                (byte[])r.GetValue(1),
                r.GetString(2),
                Convert.ToInt64(r.GetValue(3)) != 0,
                Convert.ToInt64(r.GetValue(4)) != 0,
                DateTimeOffset.FromUnixTimeMilliseconds(Convert.ToInt64(r.GetValue(5)))));
        }

        return (IReadOnlyList<ListKeyRecord>)keys;
    });

    // ---- writes -------------------------------------------------------------------------

    public void CreateList(MailingList list, ListKeyRecord currentKey) => Write((c, tx) =>
    {
        string norm = EmailAddress.Normalize(list.Address);
        if (Scalar(c, tx, "SELECT id FROM lists WHERE address_norm = @a", ("a", norm)) is not null)
        {
            throw new DirectoryException(DirectoryError.DuplicateList, $"list {list.Address} already exists");
        }

        long id = Convert.ToInt64(Scalar(
            c,
            tx,
            "INSERT INTO lists (address, address_norm, mode, owner, posting_policy, created_at) VALUES (@a, @n, @m, @o, @p, @t) RETURNING id",
            ("a", list.Address),
            ("n", norm),
            ("m", MailingList.FormatMode(list.Mode)),
            ("o", list.Owner),
            ("p", MailingList.FormatPolicy(list.PostingPolicy)),
            ("t", _time.GetUtcNow().ToUnixTimeMilliseconds())));
        WriteOptions(c, tx, id, list.Options);
        InsertKey(c, tx, id, currentKey, isCurrent: true);
    });

    /// <summary>Replaces mode, owner, posting policy and options.</summary>
    public void UpdateList(MailingList list) => Write((c, tx) =>
    {
        long id = RequireListId(c, tx, list.Address);
        Exec(
            c,
            tx,
            "UPDATE lists SET mode = @m, owner = @o, posting_policy = @p WHERE id = @id",
            ("m", MailingList.FormatMode(list.Mode)),
            ("o", list.Owner),
            ("p", MailingList.FormatPolicy(list.PostingPolicy)),
            ("id", id));
        Exec(c, tx, "DELETE FROM list_options WHERE list_id = @id", ("id", id));
        WriteOptions(c, tx, id, list.Options);
    });

    /// <summary>Deletes the list with its members and key records; returns the key files to remove.</summary>
    public IReadOnlyList<string> DeleteList(string address)
    {
        IReadOnlyList<string> files = [];
        Write((c, tx) =>
        {
            long id = RequireListId(c, tx, address);
            using (DbCommand parents = Command(
                c,
                tx,
                "SELECT l.address FROM members m JOIN lists l ON l.id = m.list_id WHERE m.address_norm = @a",
                ("a", EmailAddress.Normalize(address))))
            {
                List<string> containing = ReadStrings(parents);
                if (containing.Count > 0)
                {
                    throw new DirectoryException(
                        DirectoryError.InvalidArgument,
                        $"list {address} is a member of {string.Join(", ", containing)}; remove it there first");
                }
            }

            using (DbCommand keys = Command(c, tx, "SELECT key_file FROM list_keys WHERE list_id = @id", ("id", id)))
            {
                files = ReadStrings(keys);
            }

            // Explicit deletes: do not depend on SQLite's per-connection foreign_keys pragma.
            Exec(c, tx, "DELETE FROM member_certificates WHERE member_id IN (SELECT id FROM members WHERE list_id = @id)", ("id", id));
            Exec(c, tx, "DELETE FROM members WHERE list_id = @id", ("id", id));
            Exec(c, tx, "DELETE FROM list_options WHERE list_id = @id", ("id", id));
            Exec(c, tx, "DELETE FROM list_keys WHERE list_id = @id", ("id", id));
            Exec(c, tx, "DELETE FROM lists WHERE id = @id", ("id", id));
        });
        return files;
    }

    /// <summary>Members per multi-row INSERT (and per progress step of <see cref="AddMembers"/>); the dialect's choice.</summary>
    public int InsertBatchSize => _dialect.InsertBatchRows;

    /// <summary>
    /// Adds members in one transaction; a duplicate (case-insensitive) aborts all of them.
    /// Rows go in multi-row INSERTs of <see cref="InsertBatchSize"/>: one round trip per batch
    /// instead of one per row (PostgreSQL paid ~3 ms per member row by row).
    /// STORED, when given, is called after each batch with the number of members written so far.
    /// </summary>
    public void AddMembers(string listAddress, IReadOnlyList<ListMember> members, Action<int>? stored = null) => Write((c, tx) =>
    {
        long listId = RequireListId(c, tx, listAddress);
        var ids = new Dictionary<string, long>(StringComparer.Ordinal);
        int batchSize = InsertBatchSize;
        var pending = new List<ListMember>(batchSize);
        int written = 0;
        for (int start = 0; start < members.Count; start += batchSize)
        {
            pending.Clear();
            for (int i = start; i < Math.Min(members.Count, start + batchSize); i++)
            {
                pending.Add(members[i]);
            }

            ids.Clear();
            using (var insert = new RowBatch(c, tx, MemberInsertPrefix, MemberInsertSuffix, MemberColumns, pending.Count))
            {
                for (int i = 0; i < pending.Count; i++)
                {
                    ListMember member = pending[i];
                    insert.Set(i, 0, listId);
                    insert.Set(i, 1, member.Address);
                    insert.Set(i, 2, EmailAddress.Normalize(member.Address));
                    insert.Set(i, 3, member.UseOaep ? 1L : 0L);
                    insert.Set(i, 4, member.DeliveryEnabled ? 1L : 0L);
                    insert.Set(i, 5, member.SelfCopy is { } s ? (s ? 1L : 0L) : null);
                }

                using DbDataReader r = insert.Command.ExecuteReader();
                while (r.Read())
                {
                    ids[r.GetString(1)] = Convert.ToInt64(r.GetValue(0));
                }
            }

            // ON CONFLICT DO NOTHING returns no row for an address already on the list (or
            // twice in this batch): the first such member names the refusal.
            var certificates = new List<(long MemberId, MemberCertificate Certificate)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (ListMember member in pending)
            {
                string norm = EmailAddress.Normalize(member.Address);
                if (!seen.Add(norm) || !ids.TryGetValue(norm, out long id))
                {
                    throw new DirectoryException(DirectoryError.DuplicateMember, $"{member.Address} is already a member of {listAddress}");
                }

                foreach (MemberCertificate certificate in member.Certificates)
                {
                    certificates.Add((id, certificate));
                }
            }

            for (int first = 0; first < certificates.Count; first += batchSize)
            {
                int count = Math.Min(batchSize, certificates.Count - first);
                using var insert = new RowBatch(c, tx, InsertCertificatePrefix, string.Empty, CertificateColumns, count);
                for (int i = 0; i < count; i++)
                {
                    (long memberId, MemberCertificate certificate) = certificates[first + i];
                    insert.Set(i, 0, memberId);
                    insert.Set(i, 1, certificate.Der);
                    insert.Set(i, 2, certificate.NotBefore.ToUnixTimeMilliseconds());
                    insert.Set(i, 3, certificate.NotAfter.ToUnixTimeMilliseconds());
                    insert.Set(i, 4, certificate.KeyProblem);
                }

                insert.Command.ExecuteNonQuery();
            }

            written += pending.Count;
            stored?.Invoke(written);
        }
    });

    /// <summary>Changes the given per-member options and appends certificates; null leaves a value alone.</summary>
    public void UpdateMember(string listAddress, string address, bool? useOaep, bool? deliveryEnabled, IReadOnlyList<MemberCertificate>? addCertificates) => Write((c, tx) =>
    {
        long listId = RequireListId(c, tx, listAddress);
        object? memberId = Scalar(
            c,
            tx,
            "SELECT id FROM members WHERE list_id = @list AND address_norm = @n",
            ("list", listId),
            ("n", EmailAddress.Normalize(address)));
        if (memberId is null)
        {
            throw new DirectoryException(DirectoryError.UnknownMember, $"{address} is not a member of {listAddress}");
        }

        if (useOaep is { } oaep)
        {
            Exec(c, tx, "UPDATE members SET use_oaep = @v WHERE id = @id", ("v", oaep ? 1L : 0L), ("id", memberId));
        }

        if (deliveryEnabled is { } delivery)
        {
            Exec(c, tx, "UPDATE members SET delivery_enabled = @v WHERE id = @id", ("v", delivery ? 1L : 0L), ("id", memberId));
        }

        foreach (MemberCertificate certificate in addCertificates ?? [])
        {
            Exec(
                c,
                tx,
                InsertCertificateSql,
                ("m", memberId),
                ("der", certificate.Der),
                ("nb", certificate.NotBefore.ToUnixTimeMilliseconds()),
                ("na", certificate.NotAfter.ToUnixTimeMilliseconds()),
                ("kp", certificate.KeyProblem));
        }
    });

    public void RemoveMember(string listAddress, string address) => Write((c, tx) =>
    {
        long listId = RequireListId(c, tx, listAddress);
        object? memberId = Scalar(
            c,
            tx,
            "SELECT id FROM members WHERE list_id = @list AND address_norm = @n",
            ("list", listId),
            ("n", EmailAddress.Normalize(address)));
        if (memberId is null)
        {
            throw new DirectoryException(DirectoryError.UnknownMember, $"{address} is not a member of {listAddress}");
        }

        Exec(c, tx, "DELETE FROM member_certificates WHERE member_id = @id", ("id", memberId));
        Exec(c, tx, "DELETE FROM members WHERE id = @id", ("id", memberId));
    });

    /// <summary>Adds a list key; when current, the previous current key stays active (for decryption) but is no longer current.</summary>
    public void AddListKey(string listAddress, ListKeyRecord key) => Write((c, tx) =>
    {
        long listId = RequireListId(c, tx, listAddress);
        if (key.IsCurrent)
        {
            Exec(c, tx, "UPDATE list_keys SET is_current = 0 WHERE list_id = @list", ("list", listId));
        }

        InsertKey(c, tx, listId, key, key.IsCurrent);
    });

    // ---- helpers ------------------------------------------------------------------------

    private const string InsertCertificatePrefix = "INSERT INTO member_certificates (member_id, der, not_before, not_after, key_problem) VALUES ";

    private const string InsertCertificateSql = InsertCertificatePrefix + "(@m, @der, @nb, @na, @kp)";

    private const string MemberInsertPrefix = "INSERT INTO members (list_id, address, address_norm, use_oaep, delivery_enabled, self_copy) VALUES ";

    private const string MemberInsertSuffix = " ON CONFLICT (list_id, address_norm) DO NOTHING RETURNING id, address_norm";

    private static readonly DbType[] MemberColumns = [DbType.Int64, DbType.String, DbType.String, DbType.Int64, DbType.Int64, DbType.Int64];

    private static readonly DbType[] CertificateColumns = [DbType.Int64, DbType.Binary, DbType.Int64, DbType.Int64, DbType.String];

    private void InsertKey(DbConnection c, DbTransaction tx, long listId, ListKeyRecord key, bool isCurrent) =>
        Exec(
            c,
            tx,
            "INSERT INTO list_keys (list_id, certificate, key_file, is_current, is_retired, created_at) VALUES (@list, @cert, @file, @cur, @ret, @t)",
            ("list", listId),
            ("cert", key.Certificate),
            ("file", key.KeyFile),
            ("cur", isCurrent ? 1L : 0L),
            ("ret", key.IsRetired ? 1L : 0L),
            ("t", key.CreatedAt.ToUnixTimeMilliseconds()));

    private static void WriteOptions(DbConnection c, DbTransaction tx, long listId, IReadOnlyDictionary<string, string> options)
    {
        foreach ((string name, string value) in options)
        {
            Exec(c, tx, "INSERT INTO list_options (list_id, name, value) VALUES (@id, @k, @v)", ("id", listId), ("k", name), ("v", value));
        }
    }

    private static List<MailingList> ReadLists(DbConnection c, DbTransaction? tx, string? onlyNorm)
    {
        string where = onlyNorm is null ? string.Empty : " WHERE address_norm = @n";
        var rows = new List<(long Id, string Address, string Mode, string? Owner, string Policy)>();
        using (DbCommand cmd = Command(c, tx, "SELECT id, address, mode, owner, posting_policy FROM lists" + where + " ORDER BY address_norm", ("n", onlyNorm)))
        using (DbDataReader r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                rows.Add((Convert.ToInt64(r.GetValue(0)), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4)));
            }
        }

        var options = new Dictionary<long, Dictionary<string, string>>();
        string optionWhere = onlyNorm is null ? string.Empty : " WHERE list_id IN (SELECT id FROM lists WHERE address_norm = @n)";
        using (DbCommand cmd = Command(c, tx, "SELECT list_id, name, value FROM list_options" + optionWhere, ("n", onlyNorm)))
        using (DbDataReader r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                long id = Convert.ToInt64(r.GetValue(0));
                if (!options.TryGetValue(id, out Dictionary<string, string>? map))
                {
                    map = new Dictionary<string, string>(StringComparer.Ordinal);
                    options[id] = map;
                }

                map[r.GetString(1)] = r.GetString(2);
            }
        }

        var lists = new List<MailingList>(rows.Count);
        foreach ((long id, string address, string modeText, string? owner, string policyText) in rows)
        {
            if (!MailingList.TryParseMode(modeText, out ListMode mode) || !MailingList.TryParsePolicy(policyText, out PostingPolicy policy))
            {
                throw new DirectoryException(DirectoryError.Corrupt, $"list {address} has unknown mode '{modeText}' or posting policy '{policyText}'");
            }

            lists.Add(new MailingList(
                address,
                mode,
                owner,
                policy,
                options.TryGetValue(id, out Dictionary<string, string>? map) ? map : MailingList.NoOptions));
        }

        return lists;
    }

    private static long RequireListId(DbConnection c, DbTransaction? tx, string address)
    {
        object? id = Scalar(c, tx, "SELECT id FROM lists WHERE address_norm = @n", ("n", EmailAddress.Normalize(address)));
        return id is null ? throw UnknownList(address) : Convert.ToInt64(id);
    }

    private static DirectoryException UnknownList(string address) =>
        new(DirectoryError.UnknownList, $"no list {address} in the directory");

    private T Run<T>(Func<DbConnection, T> work)
    {
        try
        {
            using DbConnection connection = _dialect.OpenConnection();
            return work(connection);
        }
        catch (DbException e)
        {
            throw new DirectoryException(DirectoryError.Unavailable, $"directory database ({_dialect.Provider}): {OneLine(e.Message)}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new DirectoryException(DirectoryError.Unavailable, $"directory database ({_dialect.Provider}): {OneLine(e.Message)}", e);
        }
    }

    private void Write(Action<DbConnection, DbTransaction> work) => Run(connection =>
    {
        using DbTransaction tx = connection.BeginTransaction();
        work(connection, tx);
        Exec(connection, tx, "UPDATE directory_generation SET generation = generation + 1 WHERE id = 1");
        tx.Commit();
        return 0;
    });

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    internal static DbCommand Command(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        DbCommand cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach ((string name, object? value) in parameters)
        {
            DbParameter p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }

        return cmd;
    }

    internal static void Exec(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using DbCommand cmd = Command(c, tx, sql, parameters);
        cmd.ExecuteNonQuery();
    }

    internal static object? Scalar(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using DbCommand cmd = Command(c, tx, sql, parameters);
        object? value = cmd.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    private static List<string> ReadStrings(DbCommand cmd)
    {
        var values = new List<string>();
        using DbDataReader r = cmd.ExecuteReader();
        while (r.Read())
        {
            values.Add(r.GetString(0));
        }

        return values;
    }
}
