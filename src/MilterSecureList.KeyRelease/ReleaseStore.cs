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
    DateTimeOffset? DeletedAt)
{
    /// <summary>The list's <c>release-delete</c> at deposit time.</summary>
    public ReleaseDeletePolicy DeletePolicy { get; init; }

    /// <summary>Why the key material was forgotten (<c>after-all</c>, <c>at-expiry</c>); null while it is held.</summary>
    public string? DeleteReason { get; init; }
}

/// <summary>Who fetched a post, when first and last, how often.</summary>
public sealed record ReleaseFetch(string Member, DateTimeOffset FirstAt, DateTimeOffset LastAt, long Count);

/// <summary>One audit row (docs/key-release.md §4.2).</summary>
public sealed record ReleaseAuditRow(string MessageId, string Member, DateTimeOffset At, string Client, string Result, string Reason);

/// <summary>The release writer's transactions (<see cref="ReleaseStore.TakeCommitStatistics"/>).</summary>
public readonly record struct CommitStatistics(long Commits, long Writes, TimeSpan Time, TimeSpan Longest);

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
    // release_pending rows: message id, member.
    private static readonly System.Data.DbType[] PendingColumns = [System.Data.DbType.String, System.Data.DbType.String];

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

    // Nonces whose replay window has passed are dropped by the writer thread itself, a bounded chunk after a batch, once
    // PurgeEvery nonces were taken since the last purge (and by the sweep): on a request thread the purge contended with
    // the writer for SQLite's write lock, and one large DELETE held every commit behind it (docs/key-release.md,
    // Performance).
    private const int PurgeChunk = 1_000;
    private int _noncesSincePurge;
    private bool _purging;

    // SQLite: the writer's commits never checkpoint the write-ahead log themselves (wal_autocheckpoint = 0 on its
    // connection); a checkpointer thread does it, woken every CheckpointEvery commits, so the checkpoint's copy and fsync
    // run beside the commits instead of inside one of them (docs/key-release.md, Performance).
    private const int CheckpointEvery = 100;
    private readonly Thread? _checkpointer;
    private readonly AutoResetEvent _checkpointDue = new(false);
    private volatile bool _stopping;

    /// <summary>Nonces taken between two purges on the writer thread (tests set it low).</summary>
    internal int PurgeEvery { get; set; } = 10_000;

    // The writer's own figures (the benchmark reads them): how long its transactions took, the longest one.
    private long _commits;
    private long _committedWrites;
    private long _commitTicks;
    private long _longestCommitTicks;

    // The release path's statements stay prepared on their connections (docs/key-release.md, Performance): otherwise
    // each request re-opened a pooled connection (two PRAGMAs) and parsed every statement again. Readers are taken
    // from the bag and put back; the writer session belongs to the writer thread. A session whose statement failed is
    // closed, not reused.
    private readonly ConcurrentBag<ReadSession> _readers = [];
    private WriteSession? _writeSession;

    // Set when key material was forgotten and SQLite's write-ahead log may still hold it.
    private int _forgottenSinceCheckpoint;

    private ReleaseStore(SqlDialect dialect, TimeProvider time)
    {
        _dialect = dialect;
        _time = time;
        Migrate();
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "release store writer" };
        _writer.Start();
        if (dialect.Provider == DirectoryProvider.Sqlite)
        {
            _checkpointer = new Thread(CheckpointLoop) { IsBackground = true, Name = "release store checkpointer" };
            _checkpointer.Start();
        }
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
        _stopping = true;
        _checkpointDue.Set();
        _checkpointer?.Join();
        _checkpointDue.Dispose();
        while (_readers.TryTake(out ReadSession? reader))
        {
            reader.Dispose();
        }

        _dialect.Dispose();
    }

    private void Migrate() => Run(c =>
    {
        SchemaMigrator.Apply(c, _dialect, "release", "release_schema_version", ReleaseMigrations.All);
        return 0;
    });

    // ---- deposits ----------------------------------------------------------------------------

    /// <summary>Stores a deposit; the same deposit again is <see cref="DepositOutcome.AlreadyStored"/> (the milter retries
    /// after a timeout), a different one under the same id <see cref="DepositOutcome.Conflict"/>. For an
    /// <see cref="ReleaseDeletePolicy.AfterAll"/> post, <paramref name="entitled"/> are the list's members now: the key
    /// material is forgotten once each of them has fetched it.</summary>
    public DepositOutcome Deposit(ReleaseRecord record, IReadOnlyCollection<string>? entitled = null) => Run(c =>
    {
        SecureDelete(c);
        using DbTransaction tx = c.BeginTransaction();
        int inserted;
        using (DbCommand cmd = Sql.Command(c, tx,
            """
            INSERT INTO release_messages (message_id, list_norm, sender, mode, policy, binding, key_id, key_recipient_info,
                key_length, list_key_id, created_at, not_after, delete_policy)
            VALUES (@id, @list, @sender, @mode, @policy, @binding, @keyid, @ri, @len, @lkid, @created, @notafter, @delete)
            ON CONFLICT (message_id) DO NOTHING
            """,
            ("id", record.MessageId), ("list", EmailAddress.Normalize(record.List)), ("sender", record.Sender), ("mode", (long)record.Mode),
            ("policy", record.Policy), ("binding", record.Binding), ("keyid", record.KeyId), ("ri", record.KeyRecipientInfo),
            ("len", (long)record.KeyLength), ("lkid", record.ListKeyId), ("created", record.CreatedAt.ToUnixTimeSeconds()),
            ("notafter", record.NotAfter.ToUnixTimeSeconds()), ("delete", KeyReleaseListOptions.Name(record.DeletePolicy))))
        {
            inserted = cmd.ExecuteNonQuery();
        }

        DepositOutcome outcome = DepositOutcome.Stored;
        if (inserted == 1 && record.DeletePolicy == ReleaseDeletePolicy.AfterAll && entitled is not null)
        {
            InsertPending(c, tx, record.MessageId, entitled);
        }
        else if (inserted == 0)
        {
            ReleaseRecord? existing = ReadMessage(c, tx, record.MessageId);
            bool same = existing is not null && existing.Binding.AsSpan().SequenceEqual(record.Binding)
                && existing.Policy.AsSpan().SequenceEqual(record.Policy);
            outcome = same ? DepositOutcome.AlreadyStored : DepositOutcome.Conflict;
        }

        tx.Commit();
        return outcome;
    });

    private void InsertPending(DbConnection c, DbTransaction tx, string messageId, IReadOnlyCollection<string> members)
    {
        string[] distinct = [.. members.Select(EmailAddress.Normalize).Distinct(StringComparer.Ordinal)];
        int batchSize = _dialect.InsertBatchRows;
        for (int first = 0; first < distinct.Length; first += batchSize)
        {
            int count = Math.Min(batchSize, distinct.Length - first);
            using var insert = new RowBatch(c, tx, "INSERT INTO release_pending (message_id, member_norm) VALUES ", "", PendingColumns, count);
            for (int i = 0; i < count; i++)
            {
                insert.Set(i, 0, messageId);
                insert.Set(i, 1, distinct[first + i]);
            }

            insert.Command.ExecuteNonQuery();
        }
    }

    public ReleaseRecord? GetMessage(string messageId) => Run(c => ReadMessage(c, null, messageId));

    /// <summary>How many members at deposit time have not fetched an <c>after-all</c> post yet.</summary>
    public long GetPendingCount(string messageId) => Run(c =>
        Convert.ToInt64(Sql.Scalar(c, null, "SELECT COUNT(*) FROM release_pending WHERE message_id = @id", ("id", messageId)) ?? 0L));

    /// <summary>The post and whether it is revoked for <paramref name="member"/>, on one connection (the release path).</summary>
    public (ReleaseRecord? Record, bool RevokedForMember) GetForRelease(string messageId, string member)
    {
        ReadSession? session = null;
        try
        {
            session = _readers.TryTake(out ReadSession? idle) ? idle : new ReadSession(_dialect);
            session.Message.Parameters[0].Value = messageId;
            ReleaseRecord? record = ReadMessage(session.Message);
            bool revoked = false;
            if (record is not null)
            {
                session.Revoked.Parameters[0].Value = messageId;
                session.Revoked.Parameters[1].Value = EmailAddress.Normalize(member);
                revoked = session.Revoked.ExecuteScalar() is not (null or DBNull);
            }

            if (Volatile.Read(ref _disposed) == 0)
            {
                _readers.Add(session);
                session = null;
            }

            return (record, revoked);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException)
        {
            throw Unavailable(e);
        }
        finally
        {
            session?.Dispose();
        }
    }

    private const string SelectMessage =
        """
        SELECT message_id, list_norm, sender, mode, policy, binding, key_id, key_recipient_info, key_length, list_key_id,
               created_at, not_after, revoked_at, deleted_at, delete_policy, delete_reason
        FROM release_messages WHERE message_id = @id
        """;

    private static ReleaseRecord? ReadMessage(DbConnection c, DbTransaction? tx, string messageId)
    {
        using DbCommand cmd = Sql.Command(c, tx, SelectMessage, ("id", messageId));
        return ReadMessage(cmd);
    }

    private static ReleaseRecord? ReadMessage(DbCommand cmd)
    {
        using DbDataReader r = cmd.ExecuteReader();
        if (!r.Read())
        {
            return null;
        }

        return new ReleaseRecord(r.GetString(0), r.GetString(1), r.GetString(2), (int)r.GetInt64(3), (byte[])r[4], (byte[])r[5],
            (byte[])r[6], r.IsDBNull(7) ? null : (byte[])r[7], (int)r.GetInt64(8), r.IsDBNull(9) ? null : (byte[])r[9],
            DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(10)), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(11)),
            r.IsDBNull(12) ? null : DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(12)),
            r.IsDBNull(13) ? null : DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(13)))
        {
            DeletePolicy = KeyReleaseListOptions.ParseDelete(r.GetString(14)),
            DeleteReason = r.IsDBNull(15) ? null : r.GetString(15),
        };
    }

    // ---- control -----------------------------------------------------------------------------

    /// <summary>Revokes the whole post, or only for <paramref name="member"/>. False when the post is unknown.</summary>
    public bool Revoke(string messageId, string? member) => Run(c =>
    {
        SecureDelete(c);
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

    // ---- forgetting (release-delete) ---------------------------------------------------------------

    /// <summary>Reason of a forgetting: every member at deposit time fetched the post.</summary>
    public const string ForgottenAfterAll = "after-all";

    /// <summary>Reason of a forgetting: the post's notAfter passed.</summary>
    public const string ForgottenAtExpiry = "at-expiry";

    /// <summary>Forgets one post's key material now (the record, fetches and audit stay). False when it is unknown or
    /// already forgotten.</summary>
    public bool ForgetKey(string messageId, string reason) => Run(c =>
    {
        SecureDelete(c);
        using DbTransaction tx = c.BeginTransaction();
        int n = Forget(c, tx, "message_id = @id", reason, ("id", messageId));
        tx.Commit();
        return n == 1;
    });

    /// <summary>
    /// The sweep (docs/key-release.md §4.3): forgets the key material of every post whose notAfter has passed (unless
    /// its policy is <c>never</c>) and of every <c>after-all</c> post no member at deposit time still waits for (a post
    /// whose last fetches raced on PostgreSQL, or a list that had no members). Returns how many of each.
    /// </summary>
    public (int Expired, int AfterAll) ForgetDue() => Run(c =>
    {
        SecureDelete(c);
        using DbTransaction tx = c.BeginTransaction();
        int expired = Forget(c, tx, "not_after < @now AND delete_policy <> 'never'", ForgottenAtExpiry,
            ("now", _time.GetUtcNow().ToUnixTimeSeconds()));
        int afterAll = Forget(c, tx,
            "delete_policy = 'after-all' AND NOT EXISTS (SELECT 1 FROM release_pending p WHERE p.message_id = release_messages.message_id)",
            ForgottenAfterAll);
        tx.Commit();
        return (expired, afterAll);
    });

    /// <summary>
    /// Overwrites the key material of the posts matching <paramref name="condition"/> with zeros, then clears it and notes
    /// when and why. The overwrite comes first so that neither SQLite's page nor a PostgreSQL row version written from
    /// now on holds the bytes; what older row versions, the WAL and backups keep is in docs/key-release.md §8.
    /// </summary>
    private int Forget(DbConnection c, DbTransaction tx, string condition, string reason, params (string Name, object? Value)[] parameters)
    {
        var due = new List<(string Id, int Length)>();
        using (DbCommand select = Sql.Command(c, tx,
            $"SELECT message_id, length(key_recipient_info) FROM release_messages WHERE deleted_at IS NULL AND key_recipient_info IS NOT NULL AND {condition}",
            parameters))
        using (DbDataReader r = select.ExecuteReader())
        {
            while (r.Read())
            {
                due.Add((r.GetString(0), Convert.ToInt32(r.GetValue(1), System.Globalization.CultureInfo.InvariantCulture)));
            }
        }

        long now = _time.GetUtcNow().ToUnixTimeSeconds();
        foreach ((string id, int length) in due)
        {
            Sql.Exec(c, tx, "UPDATE release_messages SET key_recipient_info = @zeros WHERE message_id = @id", ("zeros", new byte[length]), ("id", id));
            Sql.Exec(c, tx, "UPDATE release_messages SET key_recipient_info = NULL, deleted_at = @now, delete_reason = @why WHERE message_id = @id",
                ("now", now), ("why", reason), ("id", id));
            Sql.Exec(c, tx, "DELETE FROM release_pending WHERE message_id = @id", ("id", id));
        }

        if (due.Count > 0)
        {
            Volatile.Write(ref _forgottenSinceCheckpoint, 1);
        }

        return due.Count;
    }

    /// <summary>
    /// SQLite keeps earlier page images in its write-ahead log until a checkpoint: after a forgetting, copy the log into
    /// the database file and truncate it, so the file system holds the key material in neither. It waits (busy_timeout)
    /// for the release writer like any other SQLite writer, and for a reader still on an old snapshot. No-op on PostgreSQL.
    /// </summary>
    public void CheckpointAfterForgetting()
    {
        if (_dialect.Provider != DirectoryProvider.Sqlite || Interlocked.Exchange(ref _forgottenSinceCheckpoint, 0) == 0)
        {
            return;
        }

        Run(c =>
        {
            Sql.Exec(c, null, "PRAGMA wal_checkpoint(TRUNCATE)");
            return 0;
        });
    }

    /// <summary>SQLite: freed space is zeroed, so a rewritten or cleared row leaves no copy of its old bytes in the page.
    /// Set on every connection that writes release_messages.</summary>
    private void SecureDelete(DbConnection c, DbTransaction? tx = null)
    {
        if (_dialect.Provider == DirectoryProvider.Sqlite)
        {
            Sql.Exec(c, tx, "PRAGMA secure_delete = ON");
        }
    }

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
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                CommitBatch(batch, results);
                Count(batch.Count, System.Diagnostics.Stopwatch.GetTimestamp() - started);
                if (_checkpointer is not null && _commits % CheckpointEvery == 0)
                {
                    _checkpointDue.Set();
                }

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
            PurgeSome();
        }

        _writeSession?.Dispose();
        _writeSession = null;
    }

    /// <summary>Writer thread, after a batch: one chunk of expired nonces while a purge is due.</summary>
    private void PurgeSome()
    {
        if (!_purging && _noncesSincePurge >= PurgeEvery)
        {
            _purging = true;
            _noncesSincePurge = 0;
        }

        if (!_purging)
        {
            return;
        }

        try
        {
            WriteSession session = _writeSession ??= new WriteSession(_dialect);
            session.Enlist(null);
            session.Purge.Parameters[0].Value = _time.GetUtcNow().ToUnixTimeSeconds();
            _purging = session.Purge.ExecuteNonQuery() == PurgeChunk;
        }
        catch (Exception)
        {
            // Whatever fails, the writer goes on (the sweep purges too); its session is opened again for the next batch.
            _purging = false;
            _writeSession?.Dispose();
            _writeSession = null;
        }
    }

    /// <summary>SQLite: checkpoints the write-ahead log when the writer says so (PASSIVE: it never waits for the writer or
    /// a reader, and copies what it can).</summary>
    private void CheckpointLoop()
    {
        DbConnection? connection = null;
        while (true)
        {
            _checkpointDue.WaitOne();
            if (_stopping)
            {
                break;
            }

            try
            {
                connection ??= _dialect.OpenConnection();
                Sql.Exec(connection, null, "PRAGMA wal_checkpoint(PASSIVE)");
            }
            catch (Exception e) when (e is DbException or InvalidOperationException)
            {
                // Retried at the next wake-up on a fresh connection; until then the log grows.
                connection?.Dispose();
                connection = null;
            }
        }

        connection?.Dispose();
    }

    private void Count(int writes, long ticks)
    {
        Interlocked.Increment(ref _commits);
        Interlocked.Add(ref _committedWrites, writes);
        Interlocked.Add(ref _commitTicks, ticks);
        if (ticks > Volatile.Read(ref _longestCommitTicks))
        {
            Volatile.Write(ref _longestCommitTicks, ticks);
        }
    }

    /// <summary>The writer's transactions so far (group commit): how many, how many writes they carried, their time, and
    /// the longest since the last call (which starts a new maximum).</summary>
    public CommitStatistics TakeCommitStatistics()
    {
        long longest = Interlocked.Exchange(ref _longestCommitTicks, 0);
        return new CommitStatistics(Interlocked.Read(ref _commits), Interlocked.Read(ref _committedWrites),
            System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _commitTicks)), System.Diagnostics.Stopwatch.GetElapsedTime(0, longest));
    }

    /// <summary>Commits the batch in one transaction on the writer thread's session (opened again after a failure).</summary>
    private void CommitBatch(IReadOnlyList<PendingWrite> batch, List<(bool, bool)> results)
    {
        try
        {
            WriteSession session = _writeSession ??= new WriteSession(_dialect);
            results.Clear();
            using DbTransaction tx = session.Connection.BeginTransaction();
            session.Enlist(tx);
            foreach (PendingWrite write in batch)
            {
                results.Add(Apply(session, tx, write));
            }

            tx.Commit();
        }
        catch (Exception e)
        {
            _writeSession?.Dispose();
            _writeSession = null;
            if (e is DbException or InvalidOperationException)
            {
                throw Unavailable(e);
            }

            throw;
        }
    }

    private (bool NonceFresh, bool FirstFetch) Apply(WriteSession s, DbTransaction tx, PendingWrite write)
    {
        ReleaseAuditRow audit = write.Audit;
        if (write.Nonce is null)
        {
            s.InsertAudit(audit);
            return (true, false);
        }

        s.Nonce.Parameters[0].Value = write.Nonce;
        s.Nonce.Parameters[1].Value = write.NonceExpires;
        _noncesSincePurge++;
        if (s.Nonce.ExecuteNonQuery() == 0)
        {
            s.InsertAudit(audit with { Result = "refused", Reason = "replay" });
            return (false, false);
        }

        bool first = false;
        if (write.Released)
        {
            long at = audit.At.ToUnixTimeSeconds();
            string member = EmailAddress.Normalize(audit.Member);
            s.FetchSeen.Parameters[0].Value = audit.MessageId;
            s.FetchSeen.Parameters[1].Value = member;
            first = s.FetchSeen.ExecuteScalar() is null or DBNull;
            DbCommand fetch = first ? s.FetchFirst : s.FetchAgain;
            fetch.Parameters[0].Value = audit.MessageId;
            fetch.Parameters[1].Value = member;
            fetch.Parameters[2].Value = at;
            fetch.ExecuteNonQuery();
            if (first)
            {
                ForgetWhenAllFetched(s.Connection, tx, audit.MessageId, member);
            }
        }

        s.InsertAudit(audit);
        return (true, first);
    }

    /// <summary>release-delete = after-all: the member's first fetch ticks it off; the last one forgets the key material in
    /// the same transaction. (Two last fetches committing at once on PostgreSQL each still see the other's row: the
    /// sweep forgets such a post.)</summary>
    private void ForgetWhenAllFetched(DbConnection c, DbTransaction tx, string messageId, string member)
    {
        using DbCommand tick = Sql.Command(c, tx, "DELETE FROM release_pending WHERE message_id = @id AND member_norm = @m", ("id", messageId), ("m", member));
        if (tick.ExecuteNonQuery() == 1
            && Sql.Scalar(c, tx, "SELECT 1 FROM release_pending WHERE message_id = @id LIMIT 1", ("id", messageId)) is null)
        {
            SecureDelete(c, tx);
            Forget(c, tx, "message_id = @id AND delete_policy = 'after-all'", ForgottenAfterAll, ("id", messageId));
        }
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

    private T Run<T>(Func<DbConnection, T> work)
    {
        try
        {
            using DbConnection connection = _dialect.OpenConnection();
            return work(connection);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException)
        {
            throw Unavailable(e);
        }
    }

    private DirectoryException Unavailable(Exception e) =>
        new(DirectoryError.Unavailable, $"release database ({_dialect.Provider}): {e.Message.ReplaceLineEndings(" ").Trim()}", e);

    /// <summary>A command whose parameters are set per execution; the provider keeps the statement prepared for as
    /// long as the command and its connection live.</summary>
    private static DbCommand Reusable(DbConnection c, string sql, params string[] names)
    {
        DbCommand cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (string name in names)
        {
            DbParameter p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = DBNull.Value;
            cmd.Parameters.Add(p);
        }

        return cmd;
    }

    /// <summary>A connection with the release path's reads.</summary>
    private sealed class ReadSession : IDisposable
    {
        public ReadSession(SqlDialect dialect)
        {
            Connection = dialect.OpenConnection();
            Message = Reusable(Connection, SelectMessage, "id");
            Revoked = Reusable(Connection, "SELECT 1 FROM release_revocations WHERE message_id = @id AND member_norm = @m", "id", "m");
        }

        public DbConnection Connection { get; }

        public DbCommand Message { get; }

        public DbCommand Revoked { get; }

        public void Dispose()
        {
            Message.Dispose();
            Revoked.Dispose();
            Connection.Dispose();
        }
    }

    /// <summary>The writer thread's connection with the release path's writes.</summary>
    private sealed class WriteSession : IDisposable
    {
        private readonly DbCommand[] _all;

        public WriteSession(SqlDialect dialect)
        {
            Connection = dialect.OpenConnection();
            if (dialect.Provider == DirectoryProvider.Sqlite)
            {
                // The checkpointer thread checkpoints instead (CheckpointLoop).
                Sql.Exec(Connection, null, "PRAGMA wal_autocheckpoint = 0");
            }

            Purge = Reusable(Connection,
                $"DELETE FROM release_nonces WHERE nonce IN (SELECT nonce FROM release_nonces WHERE expires_at < @now LIMIT {PurgeChunk})", "now");
            Nonce = Reusable(Connection, "INSERT INTO release_nonces (nonce, expires_at) VALUES (@n, @e) ON CONFLICT (nonce) DO NOTHING", "n", "e");
            FetchSeen = Reusable(Connection, "SELECT 1 FROM release_fetches WHERE message_id = @id AND member_norm = @m", "id", "m");
            FetchFirst = Reusable(Connection,
                "INSERT INTO release_fetches (message_id, member_norm, first_at, last_at, fetch_count) VALUES (@id, @m, @at, @at, 1)", "id", "m", "at");
            FetchAgain = Reusable(Connection,
                "UPDATE release_fetches SET last_at = @at, fetch_count = fetch_count + 1 WHERE message_id = @id AND member_norm = @m", "id", "m", "at");
            Audit = Reusable(Connection,
                "INSERT INTO release_audit (message_id, member, at, client, result, reason) VALUES (@id, @m, @at, @client, @result, @reason)",
                "id", "m", "at", "client", "result", "reason");
            _all = [Nonce, FetchSeen, FetchFirst, FetchAgain, Audit, Purge];
        }

        public DbConnection Connection { get; }

        public DbCommand Nonce { get; }

        public DbCommand FetchSeen { get; }

        public DbCommand FetchFirst { get; }

        public DbCommand FetchAgain { get; }

        public DbCommand Audit { get; }

        /// <summary>Up to <see cref="PurgeChunk"/> expired nonces (its own transaction).</summary>
        public DbCommand Purge { get; }

        public void Enlist(DbTransaction? tx)
        {
            foreach (DbCommand cmd in _all)
            {
                cmd.Transaction = tx;
            }
        }

        public void InsertAudit(ReleaseAuditRow a)
        {
            DbParameterCollection p = Audit.Parameters;
            p[0].Value = a.MessageId;
            p[1].Value = a.Member.Length > 254 ? a.Member[..254] : a.Member;
            p[2].Value = a.At.ToUnixTimeSeconds();
            p[3].Value = a.Client;
            p[4].Value = a.Result;
            p[5].Value = a.Reason;
            Audit.ExecuteNonQuery();
        }

        public void Dispose()
        {
            foreach (DbCommand cmd in _all)
            {
                cmd.Dispose();
            }

            Connection.Dispose();
        }
    }
}
