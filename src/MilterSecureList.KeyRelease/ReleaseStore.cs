using System.Collections.Concurrent;
using System.Data.Common;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using Sql = MilterSecureList.Directory.Storage.SqlDirectoryStore;

namespace MilterSecureList.KeyRelease;

/// <summary>One deposited post as the key server keeps it.</summary>
public sealed record ReleaseRecord(
    string MessageId,
    string List,
    string Sender,
    int Mode,
    byte[] Policy,
    byte[] Binding,
    byte[] KeyId,
    byte[]? KeyRecipientInfo,
    int KeyLength,
    byte[]? ListKeyId,
    DateTimeOffset CreatedAt,
    DateTimeOffset NotAfter,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? DeletedAt);

/// <summary>Who fetched a post, when first and last, how often.</summary>
public sealed record ReleaseFetch(string Member, DateTimeOffset FirstAt, DateTimeOffset LastAt, long Count);

/// <summary>One audit row (docs/key-release.md §4.2).</summary>
public sealed record ReleaseAuditRow(string MessageId, string Member, DateTimeOffset At, string Client, string Result, string Reason);

/// <summary>How a deposit was taken.</summary>
public enum DepositOutcome
{
    Stored,
    AlreadyStored,
    Conflict,
}

/// <summary>
/// The release store in the directory database (SQLite or PostgreSQL; docs/key-release.md §8). Every write is
/// committed before the key server answers, so a restart loses nothing; the release path's writes are group-committed. Database errors surface as
/// <see cref="DirectoryException"/> with <see cref="DirectoryError.Unavailable"/>.
/// </summary>
public sealed class ReleaseStore : IDisposable
{
    private readonly SqlDialect _dialect;
    private readonly TimeProvider _time;

    // Group commit (docs/key-release.md, Performance): the release path's writes (nonce, fetch, audit row) go to one
    // writer thread, which takes every write waiting and commits them in one transaction. A request is answered only
    // after the transaction holding its rows has committed, so nothing acknowledged is lost when the process dies; what
    // is saved is the per-transaction cost (and, on SQLite, the single-writer lock taken once per batch, not per request).
    private const int MaxBatch = 256;
    private readonly BlockingCollection<PendingWrite> _writes = new();
    private readonly Thread _writer;
    private int _disposed;

    private ReleaseStore(SqlDialect dialect, TimeProvider time)
    {
        _dialect = dialect;
        _time = time;
        Migrate();
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "release store writer" };
        _writer.Start();
    }

    /// <summary>Opens the directory database (creating the list schema if needed) and the release tables.</summary>
    public static ReleaseStore Open(DirectoryOptions options, TimeProvider time)
    {
        Sql.Open(options, time).Dispose();
        SqlDialect dialect = SqlDialect.Create(options);
        try
        {
            return new ReleaseStore(dialect, time);
        }
        catch
        {
            dialect.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Writes already queued are committed (and answered) before the database closes.
        _writes.CompleteAdding();
        _writer.Join();
        _writes.Dispose();
        _dialect.Dispose();
    }

    private void Migrate() => Run(c =>
    {
        SchemaMigrator.Apply(c, _dialect, "release", "release_schema_version", ReleaseMigrations.All);
        return 0;
    });

    // ---- deposits ----------------------------------------------------------------------------

    /// <summary>Stores a deposit; the same deposit again is <see cref="DepositOutcome.AlreadyStored"/> (the milter retries
    /// after a timeout), a different one under the same id <see cref="DepositOutcome.Conflict"/>.</summary>
    public DepositOutcome Deposit(ReleaseRecord record) => Run(c =>
    {
        using DbTransaction tx = c.BeginTransaction();
        int inserted;
        using (DbCommand cmd = Sql.Command(c, tx,
            """
            INSERT INTO release_messages (message_id, list_norm, sender, mode, policy, binding, key_id, key_recipient_info,
                key_length, list_key_id, created_at, not_after)
            VALUES (@id, @list, @sender, @mode, @policy, @binding, @keyid, @ri, @len, @lkid, @created, @notafter)
            ON CONFLICT (message_id) DO NOTHING
            """,
            ("id", record.MessageId), ("list", EmailAddress.Normalize(record.List)), ("sender", record.Sender), ("mode", (long)record.Mode),
            ("policy", record.Policy), ("binding", record.Binding), ("keyid", record.KeyId), ("ri", record.KeyRecipientInfo),
            ("len", (long)record.KeyLength), ("lkid", record.ListKeyId), ("created", record.CreatedAt.ToUnixTimeSeconds()),
            ("notafter", record.NotAfter.ToUnixTimeSeconds())))
        {
            inserted = cmd.ExecuteNonQuery();
        }

        DepositOutcome outcome = DepositOutcome.Stored;
        if (inserted == 0)
        {
            ReleaseRecord? existing = ReadMessage(c, tx, record.MessageId);
            bool same = existing is not null && existing.Binding.AsSpan().SequenceEqual(record.Binding)
                && existing.Policy.AsSpan().SequenceEqual(record.Policy);
            outcome = same ? DepositOutcome.AlreadyStored : DepositOutcome.Conflict;
        }

        tx.Commit();
        return outcome;
    });

    public ReleaseRecord? GetMessage(string messageId) => Run(c => ReadMessage(c, null, messageId));

    /// <summary>The post and whether it is revoked for <paramref name="member"/>, on one connection (the release path).</summary>
    public (ReleaseRecord? Record, bool RevokedForMember) GetForRelease(string messageId, string member) => Run(c =>
    {
        ReleaseRecord? record = ReadMessage(c, null, messageId);
        bool revoked = record is not null && Sql.Scalar(c, null, "SELECT 1 FROM release_revocations WHERE message_id = @id AND member_norm = @m",
            ("id", messageId), ("m", EmailAddress.Normalize(member))) is not null;
        return (record, revoked);
    });

    private static ReleaseRecord? ReadMessage(DbConnection c, DbTransaction? tx, string messageId)
    {
        using DbCommand cmd = Sql.Command(c, tx,
            """
            SELECT message_id, list_norm, sender, mode, policy, binding, key_id, key_recipient_info, key_length, list_key_id,
                   created_at, not_after, revoked_at, deleted_at
            FROM release_messages WHERE message_id = @id
            """, ("id", messageId));
        using DbDataReader r = cmd.ExecuteReader();
        if (!r.Read())
        {
            return null;
        }

        return new ReleaseRecord(r.GetString(0), r.GetString(1), r.GetString(2), (int)r.GetInt64(3), (byte[])r[4], (byte[])r[5],
            (byte[])r[6], r.IsDBNull(7) ? null : (byte[])r[7], (int)r.GetInt64(8), r.IsDBNull(9) ? null : (byte[])r[9],
            DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(10)), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(11)),
            r.IsDBNull(12) ? null : DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(12)),
            r.IsDBNull(13) ? null : DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(13)));
    }

    // ---- control -----------------------------------------------------------------------------

    /// <summary>Revokes the whole post, or only for <paramref name="member"/>. False when the post is unknown.</summary>
    public bool Revoke(string messageId, string? member) => Run(c =>
    {
        using DbTransaction tx = c.BeginTransaction();
        if (Sql.Scalar(c, tx, "SELECT 1 FROM release_messages WHERE message_id = @id", ("id", messageId)) is null)
        {
            return false;
        }

        long now = _time.GetUtcNow().ToUnixTimeSeconds();
        if (member is null)
        {
            Sql.Exec(c, tx, "UPDATE release_messages SET revoked_at = COALESCE(revoked_at, @now) WHERE message_id = @id", ("id", messageId), ("now", now));
        }
        else
        {
            Sql.Exec(c, tx, "INSERT INTO release_revocations (message_id, member_norm, revoked_at) VALUES (@id, @m, @now) ON CONFLICT DO NOTHING",
                ("id", messageId), ("m", EmailAddress.Normalize(member)), ("now", now));
        }

        tx.Commit();
        return true;
    });

    /// <summary>Forgets the key material (the record, fetches and audit stay): nothing can be released afterwards.</summary>
    public void ForgetKey(string messageId) => Run(c =>
    {
        Sql.Exec(c, null, "UPDATE release_messages SET key_recipient_info = NULL, deleted_at = COALESCE(deleted_at, @now) WHERE message_id = @id",
            ("id", messageId), ("now", _time.GetUtcNow().ToUnixTimeSeconds()));
        return 0;
    });

    /// <summary>Forgets the key material of every post whose expiry has passed; returns how many.</summary>
    public int ForgetExpired() => Run(c =>
    {
        using DbCommand cmd = Sql.Command(c, null,
            "UPDATE release_messages SET key_recipient_info = NULL, deleted_at = @now WHERE deleted_at IS NULL AND not_after < @now",
            ("now", _time.GetUtcNow().ToUnixTimeSeconds()));
        return cmd.ExecuteNonQuery();
    });

    public IReadOnlyList<ReleaseFetch> GetFetches(string messageId) => Run(c =>
    {
        using DbCommand cmd = Sql.Command(c, null,
            "SELECT member_norm, first_at, last_at, fetch_count FROM release_fetches WHERE message_id = @id ORDER BY first_at, member_norm",
            ("id", messageId));
        var rows = new List<ReleaseFetch>();
        using DbDataReader r = cmd.ExecuteReader();
        while (r.Read())
        {
            rows.Add(new ReleaseFetch(r.GetString(0), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(1)),
                DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(2)), r.GetInt64(3)));
        }

        return rows;
    });

    public IReadOnlyList<string> GetRevokedMembers(string messageId) => Run(c =>
    {
        using DbCommand cmd = Sql.Command(c, null, "SELECT member_norm FROM release_revocations WHERE message_id = @id ORDER BY member_norm", ("id", messageId));
        var rows = new List<string>();
        using DbDataReader r = cmd.ExecuteReader();
        while (r.Read())
        {
            rows.Add(r.GetString(0));
        }

        return rows;
    });

    public IReadOnlyList<ReleaseAuditRow> GetAudit(string messageId) => Run(c =>
    {
        using DbCommand cmd = Sql.Command(c, null,
            "SELECT message_id, member, at, client, result, reason FROM release_audit WHERE message_id = @id ORDER BY id", ("id", messageId));
        var rows = new List<ReleaseAuditRow>();
        using DbDataReader r = cmd.ExecuteReader();
        while (r.Read())
        {
            rows.Add(new ReleaseAuditRow(r.GetString(0), r.GetString(1), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(2)), r.GetString(3), r.GetString(4), r.GetString(5)));
        }

        return rows;
    });

    // ---- releases ----------------------------------------------------------------------------

    /// <summary>
    /// Takes the nonce and, when <paramref name="released"/>, records the fetch; the audit row goes in the same
    /// transaction. A nonce seen before takes nothing and records the audit row as a refusal ("replay") instead. The task
    /// completes once that transaction has committed, with whether the nonce was fresh and, for a release, whether it was
    /// the member's first.
    /// </summary>
    public Task<(bool NonceFresh, bool FirstFetch)> CommitReleaseAsync(string nonceHex, DateTimeOffset nonceExpires, ReleaseAuditRow audit, bool released) =>
        Enqueue(new PendingWrite(nonceHex, nonceExpires.ToUnixTimeSeconds(), audit, released));

    /// <summary><see cref="CommitReleaseAsync"/>, waited for.</summary>
    public (bool NonceFresh, bool FirstFetch) CommitRelease(string nonceHex, DateTimeOffset nonceExpires, ReleaseAuditRow audit, bool released) =>
        CommitReleaseAsync(nonceHex, nonceExpires, audit, released).GetAwaiter().GetResult();

    /// <summary>An audit row on its own (refusals before the nonce was taken), committed when the task completes.</summary>
    public Task AuditAsync(ReleaseAuditRow audit) => Enqueue(new PendingWrite(null, 0, audit, false));

    /// <summary><see cref="AuditAsync"/>, waited for.</summary>
    public void Audit(ReleaseAuditRow audit) => AuditAsync(audit).GetAwaiter().GetResult();

    private Task<(bool NonceFresh, bool FirstFetch)> Enqueue(PendingWrite write)
    {
        try
        {
            _writes.Add(write);
        }
        catch (InvalidOperationException e)
        {
            throw new DirectoryException(DirectoryError.Unavailable, "release database: the store is closed", e);
        }

        return write.Done.Task;
    }

    private void WriteLoop()
    {
        var batch = new List<PendingWrite>(MaxBatch);
        var results = new List<(bool, bool)>(MaxBatch);
        while (!_writes.IsCompleted)
        {
            try
            {
                batch.Add(_writes.Take());
            }
            catch (InvalidOperationException)
            {
                break; // completed while waiting
            }

            while (batch.Count < MaxBatch && _writes.TryTake(out PendingWrite? more))
            {
                batch.Add(more);
            }

            try
            {
                CommitBatch(batch, results);
                for (int i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(results[i]);
                }
            }
            catch (Exception)
            {
                // One bad write must not fail the others: each on its own transaction, each answered with its own outcome.
                // Whatever fails, the thread goes on: a writer that died would leave every later request waiting.
                foreach (PendingWrite write in batch)
                {
                    try
                    {
                        CommitBatch([write], results);
                        write.Done.TrySetResult(results[0]);
                    }
                    catch (Exception e)
                    {
                        write.Done.TrySetException(e);
                    }
                }
            }

            batch.Clear();
        }
    }

    private void CommitBatch(IReadOnlyList<PendingWrite> batch, List<(bool, bool)> results) => Run(c =>
    {
        results.Clear();
        using DbTransaction tx = c.BeginTransaction();
        foreach (PendingWrite write in batch)
        {
            results.Add(Apply(c, tx, write));
        }

        tx.Commit();
        return 0;
    });

    private static (bool NonceFresh, bool FirstFetch) Apply(DbConnection c, DbTransaction tx, PendingWrite write)
    {
        ReleaseAuditRow audit = write.Audit;
        if (write.Nonce is null)
        {
            InsertAudit(c, tx, audit);
            return (true, false);
        }

        int taken;
        using (DbCommand cmd = Sql.Command(c, tx, "INSERT INTO release_nonces (nonce, expires_at) VALUES (@n, @e) ON CONFLICT (nonce) DO NOTHING",
            ("n", write.Nonce), ("e", write.NonceExpires)))
        {
            taken = cmd.ExecuteNonQuery();
        }

        if (taken == 0)
        {
            InsertAudit(c, tx, audit with { Result = "refused", Reason = "replay" });
            return (false, false);
        }

        bool first = false;
        if (write.Released)
        {
            long at = audit.At.ToUnixTimeSeconds();
            string member = EmailAddress.Normalize(audit.Member);
            first = Sql.Scalar(c, tx, "SELECT 1 FROM release_fetches WHERE message_id = @id AND member_norm = @m", ("id", audit.MessageId), ("m", member)) is null;
            Sql.Exec(c, tx, first
                ? "INSERT INTO release_fetches (message_id, member_norm, first_at, last_at, fetch_count) VALUES (@id, @m, @at, @at, 1)"
                : "UPDATE release_fetches SET last_at = @at, fetch_count = fetch_count + 1 WHERE message_id = @id AND member_norm = @m",
                ("id", audit.MessageId), ("m", member), ("at", at));
        }

        InsertAudit(c, tx, audit);
        return (true, first);
    }

    /// <summary>One queued write of the release path; Nonce null: an audit row only.</summary>
    private sealed class PendingWrite(string? nonce, long nonceExpires, ReleaseAuditRow audit, bool released)
    {
        public string? Nonce { get; } = nonce;

        public long NonceExpires { get; } = nonceExpires;

        public ReleaseAuditRow Audit { get; } = audit;

        public bool Released { get; } = released;

        // Continuations run elsewhere: the writer thread goes straight back to the next batch.
        public TaskCompletionSource<(bool NonceFresh, bool FirstFetch)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Drops nonces whose replay window has passed.</summary>
    public int PurgeNonces() => Run(c =>
    {
        using DbCommand cmd = Sql.Command(c, null, "DELETE FROM release_nonces WHERE expires_at < @now", ("now", _time.GetUtcNow().ToUnixTimeSeconds()));
        return cmd.ExecuteNonQuery();
    });

    private static void InsertAudit(DbConnection c, DbTransaction? tx, ReleaseAuditRow a) =>
        Sql.Exec(c, tx, "INSERT INTO release_audit (message_id, member, at, client, result, reason) VALUES (@id, @m, @at, @client, @result, @reason)",
            ("id", a.MessageId), ("m", a.Member.Length > 254 ? a.Member[..254] : a.Member), ("at", a.At.ToUnixTimeSeconds()),
            ("client", a.Client), ("result", a.Result), ("reason", a.Reason));

    private T Run<T>(Func<DbConnection, T> work)
    {
        try
        {
            using DbConnection connection = _dialect.OpenConnection();
            return work(connection);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException)
        {
            throw new DirectoryException(DirectoryError.Unavailable, $"release database ({_dialect.Provider}): {e.Message.ReplaceLineEndings(" ").Trim()}", e);
        }
    }
}
