using System.Data.Common;
using MilterSecureList.Directory.Storage;
using Sql = MilterSecureList.Directory.Storage.SqlDirectoryStore;

namespace MilterSecureList.Directory.Gateway;

/// <summary>
/// Gateway users and correspondents' certificates in the directory database (SQLite or PostgreSQL, the
/// same database as the lists). Every write bumps <c>directory_generation</c> like list writes do, so a
/// running daemon sees CLI changes within [Directory] CacheRefreshSeconds. Database errors surface as
/// <see cref="DirectoryException"/> with <see cref="DirectoryError.Unavailable"/>.
/// </summary>
public sealed class GatewayStore : IDisposable
{
    private readonly SqlDialect _dialect;
    private readonly TimeProvider _time;

    private GatewayStore(SqlDialect dialect, TimeProvider time)
    {
        _dialect = dialect;
        _time = time;
        Migrate();
    }

    /// <summary>Opens the directory database, creating or upgrading the list schema and then the gateway tables.</summary>
    public static GatewayStore Open(DirectoryOptions options, TimeProvider time)
    {
        // The list schema owns directory_generation, which gateway writes bump: make sure it exists first.
        SqlDirectoryStore.Open(options, time).Dispose();
        SqlDialect dialect = SqlDialect.Create(options);
        try
        {
            return new GatewayStore(dialect, time);
        }
        catch
        {
            dialect.Dispose();
            throw;
        }
    }

    public void Dispose() => _dialect.Dispose();

    private void Migrate() => Run(c =>
    {
        SchemaMigrator.Apply(c, _dialect, "gateway", "gateway_schema_version", GatewayMigrations.All);
        return 0;
    });

    // ---- users ------------------------------------------------------------------------------

    public IReadOnlyList<GatewayUser> GetUsers() => Run(c => ReadUsers(c, null, null));

    public bool TryGetUser(string address, out GatewayUser user)
    {
        IReadOnlyList<GatewayUser> found = Run(c => ReadUsers(c, null, EmailAddress.Normalize(address)));
        user = found.Count == 1 ? found[0] : null!;
        return found.Count == 1;
    }

    public GatewayUser GetUser(string address) =>
        TryGetUser(address, out GatewayUser user) ? user : throw UnknownUser(address);

    public void AddUser(GatewayUser user) => Write((c, tx) =>
    {
        string norm = EmailAddress.Normalize(user.Address);
        if (Sql.Scalar(c, tx, "SELECT id FROM gateway_users WHERE address_norm = @n", ("n", norm)) is not null)
        {
            throw new DirectoryException(DirectoryError.DuplicateMember, $"gateway user {user.Address} already exists");
        }

        long id = Convert.ToInt64(Sql.Scalar(
            c,
            tx,
            """
            INSERT INTO gateway_users (address, address_norm, certificate, key_file, encrypt_policy, sign_policy, opaque, created_at)
            VALUES (@a, @n, @cert, @key, @enc, @sign, @opaque, @t) RETURNING id
            """,
            ("a", user.Address),
            ("n", norm),
            ("cert", user.CertificateDer),
            ("key", user.KeyFile),
            ("enc", user.Encrypt is { } e ? GatewayNames.Format(e) : null),
            ("sign", user.Sign is { } s ? GatewayNames.Format(s) : null),
            ("opaque", user.Opaque is { } o ? (o ? 1L : 0L) : null),
            ("t", user.CreatedAt.ToUnixTimeMilliseconds())));
        WriteChain(c, tx, id, user.Chain);
    });

    /// <summary>Attaches the certificate an external CA returned for a user created with a CSR.</summary>
    public void SetUserCertificate(string address, byte[] certificateDer, IReadOnlyList<byte[]> chain) => Write((c, tx) =>
    {
        long id = RequireUserId(c, tx, address);
        Sql.Exec(c, tx, "UPDATE gateway_users SET certificate = @cert WHERE id = @id", ("cert", certificateDer), ("id", id));
        Sql.Exec(c, tx, "DELETE FROM gateway_user_chain WHERE user_id = @id", ("id", id));
        WriteChain(c, tx, id, chain);
    });

    public void SetUserPolicy(string address, EncryptPolicy? encrypt, SignPolicy? sign, bool? opaque) => Write((c, tx) =>
    {
        long id = RequireUserId(c, tx, address);
        Sql.Exec(
            c,
            tx,
            "UPDATE gateway_users SET encrypt_policy = @enc, sign_policy = @sign, opaque = @opaque WHERE id = @id",
            ("enc", encrypt is { } e ? GatewayNames.Format(e) : null),
            ("sign", sign is { } s ? GatewayNames.Format(s) : null),
            ("opaque", opaque is { } o ? (o ? 1L : 0L) : null),
            ("id", id));
    });

    /// <summary>Deletes the user; returns the key file to remove.</summary>
    public string RemoveUser(string address)
    {
        string keyFile = string.Empty;
        Write((c, tx) =>
        {
            long id = RequireUserId(c, tx, address);
            keyFile = (string)Sql.Scalar(c, tx, "SELECT key_file FROM gateway_users WHERE id = @id", ("id", id))!;
            Sql.Exec(c, tx, "DELETE FROM gateway_user_chain WHERE user_id = @id", ("id", id));
            Sql.Exec(c, tx, "DELETE FROM gateway_users WHERE id = @id", ("id", id));
        });
        return keyFile;
    }

    // ---- correspondents' certificates ---------------------------------------------------------

    /// <summary>All certificates of ADDRESS (every address when null), by address then newest first.</summary>
    public IReadOnlyList<CorrespondentCertificate> GetCertificates(string? address = null) => Run(c =>
    {
        string where = address is null ? string.Empty : " WHERE address_norm = @n";
        using DbCommand cmd = Sql.Command(
            c,
            null,
            "SELECT id, address, der, fingerprint, trust, state, pinned, capabilities, not_before, not_after, created_at FROM gateway_certificates"
                + where + " ORDER BY address_norm, not_after DESC, id DESC",
            ("n", address is null ? null : EmailAddress.Normalize(address)));
        using DbDataReader r = cmd.ExecuteReader();
        var list = new List<CorrespondentCertificate>();
        while (r.Read())
        {
            if (!GatewayNames.TryParse(r.GetString(4), out CertificateTrust trust))
            {
                throw new DirectoryException(DirectoryError.Corrupt, $"certificate {r.GetString(3)} has unknown trust '{r.GetString(4)}'");
            }

            list.Add(new CorrespondentCertificate(
                Convert.ToInt64(r.GetValue(0)),
                r.GetString(1),
                (byte[])r.GetValue(2),
                r.GetString(3),
                trust,
                r.GetString(5) == "pending" ? CorrespondentState.Pending : CorrespondentState.Active,
                Convert.ToInt64(r.GetValue(6)) != 0,
                r.IsDBNull(7) ? null : (byte[])r.GetValue(7),
                Time(r.GetValue(8)),
                Time(r.GetValue(9)),
                Time(r.GetValue(10))));
        }

        return (IReadOnlyList<CorrespondentCertificate>)list;
    });

    /// <summary>
    /// The certificate to encrypt to ADDRESS at NOW: active and valid, the pinned one first, then the
    /// one valid longest. Pending certificates are never used.
    /// </summary>
    public CorrespondentCertificate? FindEncryptionCertificate(string address, DateTimeOffset now) =>
        ChooseForEncryption(GetCertificates(address), now);

    /// <summary>The one of an address's CERTIFICATES to encrypt to at NOW (<see cref="FindEncryptionCertificate"/>),
    /// for callers that keep the address's certificates in memory.</summary>
    public static CorrespondentCertificate? ChooseForEncryption(IEnumerable<CorrespondentCertificate> certificates, DateTimeOffset now) =>
        certificates
            .Where(x => x.State == CorrespondentState.Active && x.IsValidAt(now))
            .OrderByDescending(x => x.Pinned)
            .ThenByDescending(x => x.NotAfter)
            .FirstOrDefault();

    /// <summary>
    /// An operator's import: active at once. With PIN it becomes the address's pinned certificate
    /// (earlier pins are released). Importing a known certificate again updates trust and pin.
    /// </summary>
    public void ImportCertificate(string address, byte[] der, string fingerprint, CertificateTrust trust, bool pin, DateTimeOffset notBefore, DateTimeOffset notAfter) => Write((c, tx) =>
    {
        string norm = EmailAddress.Normalize(address);
        if (pin)
        {
            Sql.Exec(c, tx, "UPDATE gateway_certificates SET pinned = 0 WHERE address_norm = @n", ("n", norm));
        }

        object? existing = Sql.Scalar(c, tx, "SELECT id FROM gateway_certificates WHERE address_norm = @n AND fingerprint = @f", ("n", norm), ("f", fingerprint));
        if (existing is not null)
        {
            Sql.Exec(
                c,
                tx,
                "UPDATE gateway_certificates SET trust = @trust, state = 'active', pinned = @pin WHERE id = @id",
                ("trust", GatewayNames.Format(trust)),
                ("pin", pin ? 1L : 0L),
                ("id", existing));
            return;
        }

        Insert(c, tx, address, der, fingerprint, trust, CorrespondentState.Active, pin, null, notBefore, notAfter);
    });

    /// <summary>
    /// Stores a certificate taken from a verified signature (trust on first use). A new certificate for
    /// an address whose pinned certificate is still valid waits as <see cref="CorrespondentState.Pending"/>
    /// until <see cref="Accept"/>; once the pin has expired the new certificate replaces it.
    /// </summary>
    public HarvestOutcome Harvest(string address, byte[] der, string fingerprint, byte[]? capabilities, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        HarvestOutcome outcome = HarvestOutcome.Refreshed;
        Write((c, tx) =>
        {
            string norm = EmailAddress.Normalize(address);
            object? existing = Sql.Scalar(c, tx, "SELECT id FROM gateway_certificates WHERE address_norm = @n AND fingerprint = @f", ("n", norm), ("f", fingerprint));
            if (existing is not null)
            {
                if (capabilities is not null)
                {
                    Sql.Exec(c, tx, "UPDATE gateway_certificates SET capabilities = @cap WHERE id = @id", ("cap", capabilities), ("id", existing));
                }

                outcome = HarvestOutcome.Refreshed;
                return;
            }

            long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            bool pinHolds = Sql.Scalar(
                c,
                tx,
                "SELECT id FROM gateway_certificates WHERE address_norm = @n AND pinned = 1 AND state = 'active' AND not_before <= @now AND not_after >= @now",
                ("n", norm),
                ("now", now)) is not null;
            if (pinHolds)
            {
                Insert(c, tx, address, der, fingerprint, CertificateTrust.Harvested, CorrespondentState.Pending, false, capabilities, notBefore, notAfter);
                outcome = HarvestOutcome.PendingAcceptance;
                return;
            }

            Sql.Exec(c, tx, "UPDATE gateway_certificates SET pinned = 0 WHERE address_norm = @n", ("n", norm));
            Insert(c, tx, address, der, fingerprint, CertificateTrust.Harvested, CorrespondentState.Active, true, capabilities, notBefore, notAfter);
            outcome = HarvestOutcome.Added;
        });
        return outcome;
    }

    /// <summary>
    /// Accepts the pending certificate of ADDRESS with FINGERPRINT (the only pending one when null): it
    /// becomes active and pinned, replacing the previous pin. Returns the accepted certificate's fingerprint.
    /// </summary>
    public string Accept(string address, string? fingerprint)
    {
        string accepted = string.Empty;
        Write((c, tx) =>
        {
            string norm = EmailAddress.Normalize(address);
            using DbCommand cmd = Sql.Command(c, tx, "SELECT id, fingerprint FROM gateway_certificates WHERE address_norm = @n AND state = 'pending'", ("n", norm));
            var pending = new List<(long Id, string Fingerprint)>();
            using (DbDataReader r = cmd.ExecuteReader())
            {
                while (r.Read())
                {
                    pending.Add((Convert.ToInt64(r.GetValue(0)), r.GetString(1)));
                }
            }

            List<(long Id, string Fingerprint)> chosen = fingerprint is null
                ? pending
                : pending.Where(p => SameFingerprint(p.Fingerprint, fingerprint)).ToList();
            if (chosen.Count == 0)
            {
                throw new DirectoryException(DirectoryError.UnknownMember, $"no pending certificate for {address}{(fingerprint is null ? string.Empty : $" with fingerprint {fingerprint}")}");
            }

            if (chosen.Count > 1)
            {
                throw new DirectoryException(DirectoryError.InvalidArgument, $"{address} has {chosen.Count} pending certificates: name one with --fingerprint");
            }

            Sql.Exec(c, tx, "UPDATE gateway_certificates SET pinned = 0 WHERE address_norm = @n", ("n", norm));
            Sql.Exec(c, tx, "UPDATE gateway_certificates SET state = 'active', pinned = 1 WHERE id = @id", ("id", chosen[0].Id));
            accepted = chosen[0].Fingerprint;
        });
        return accepted;
    }

    /// <summary>Removes the certificates of ADDRESS (only the one with FINGERPRINT when given); returns how many.</summary>
    public int RemoveCertificates(string address, string? fingerprint)
    {
        int removed = 0;
        Write((c, tx) =>
        {
            string norm = EmailAddress.Normalize(address);
            foreach ((long id, string known) in ReadIds(c, tx, norm))
            {
                if (fingerprint is null || SameFingerprint(known, fingerprint))
                {
                    Sql.Exec(c, tx, "DELETE FROM gateway_certificates WHERE id = @id", ("id", id));
                    removed++;
                }
            }

            if (removed == 0)
            {
                throw new DirectoryException(DirectoryError.UnknownMember, $"no certificate for {address}{(fingerprint is null ? string.Empty : $" with fingerprint {fingerprint}")}");
            }
        });
        return removed;
    }

    /// <summary>Fingerprints compare without colons and case, so operators may paste either form.</summary>
    public static bool SameFingerprint(string a, string b) =>
        string.Equals(a.Replace(":", string.Empty, StringComparison.Ordinal), b.Replace(":", string.Empty, StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase);

    // ---- helpers ------------------------------------------------------------------------------

    private static List<(long Id, string Fingerprint)> ReadIds(DbConnection c, DbTransaction tx, string norm)
    {
        using DbCommand cmd = Sql.Command(c, tx, "SELECT id, fingerprint FROM gateway_certificates WHERE address_norm = @n", ("n", norm));
        using DbDataReader r = cmd.ExecuteReader();
        var list = new List<(long, string)>();
        while (r.Read())
        {
            list.Add((Convert.ToInt64(r.GetValue(0)), r.GetString(1)));
        }

        return list;
    }

    private void Insert(DbConnection c, DbTransaction tx, string address, byte[] der, string fingerprint, CertificateTrust trust, CorrespondentState state, bool pinned, byte[]? capabilities, DateTimeOffset notBefore, DateTimeOffset notAfter) =>
        Sql.Exec(
            c,
            tx,
            """
            INSERT INTO gateway_certificates (address, address_norm, der, fingerprint, trust, state, pinned, capabilities, not_before, not_after, created_at)
            VALUES (@a, @n, @der, @f, @trust, @state, @pin, @cap, @nb, @na, @t)
            """,
            ("a", address),
            ("n", EmailAddress.Normalize(address)),
            ("der", der),
            ("f", fingerprint),
            ("trust", GatewayNames.Format(trust)),
            ("state", GatewayNames.Format(state)),
            ("pin", pinned ? 1L : 0L),
            ("cap", capabilities),
            ("nb", notBefore.ToUnixTimeMilliseconds()),
            ("na", notAfter.ToUnixTimeMilliseconds()),
            ("t", _time.GetUtcNow().ToUnixTimeMilliseconds()));

    private static void WriteChain(DbConnection c, DbTransaction tx, long userId, IReadOnlyList<byte[]> chain)
    {
        foreach (byte[] der in chain)
        {
            Sql.Exec(c, tx, "INSERT INTO gateway_user_chain (user_id, der) VALUES (@u, @der)", ("u", userId), ("der", der));
        }
    }

    private static List<GatewayUser> ReadUsers(DbConnection c, DbTransaction? tx, string? onlyNorm)
    {
        string where = onlyNorm is null ? string.Empty : " WHERE u.address_norm = @n";
        using DbCommand cmd = Sql.Command(
            c,
            tx,
            """
            SELECT u.id, u.address, u.certificate, u.key_file, u.encrypt_policy, u.sign_policy, u.opaque, u.created_at, ch.der
            FROM gateway_users u LEFT JOIN gateway_user_chain ch ON ch.user_id = u.id
            """ + where + " ORDER BY u.address_norm, ch.id",
            ("n", onlyNorm));
        using DbDataReader r = cmd.ExecuteReader();
        var users = new List<GatewayUser>();
        long currentId = -1;
        while (r.Read())
        {
            long id = Convert.ToInt64(r.GetValue(0));
            if (id != currentId)
            {
                currentId = id;
                EncryptPolicy? encrypt = r.IsDBNull(4) ? null : GatewayNames.TryParse(r.GetString(4), out EncryptPolicy e) ? e : throw Corrupt(r.GetString(1), r.GetString(4));
                SignPolicy? sign = r.IsDBNull(5) ? null : GatewayNames.TryParse(r.GetString(5), out SignPolicy s) ? s : throw Corrupt(r.GetString(1), r.GetString(5));
                users.Add(new GatewayUser(
                    r.GetString(1),
                    r.IsDBNull(2) ? null : (byte[])r.GetValue(2),
                    r.GetString(3),
                    new List<byte[]>(),
                    encrypt,
                    sign,
                    r.IsDBNull(6) ? null : Convert.ToInt64(r.GetValue(6)) != 0,
                    Time(r.GetValue(7))));
            }

            if (!r.IsDBNull(8))
            {
                ((List<byte[]>)users[^1].Chain).Add((byte[])r.GetValue(8));
            }
        }

        return users;

        static DirectoryException Corrupt(string address, string value) =>
            new(DirectoryError.Corrupt, $"gateway user {address} has unknown policy '{value}'");
    }

    private static DateTimeOffset Time(object value) => DateTimeOffset.FromUnixTimeMilliseconds(Convert.ToInt64(value));

    private static long RequireUserId(DbConnection c, DbTransaction? tx, string address)
    {
        object? id = Sql.Scalar(c, tx, "SELECT id FROM gateway_users WHERE address_norm = @n", ("n", EmailAddress.Normalize(address)));
        return id is null ? throw UnknownUser(address) : Convert.ToInt64(id);
    }

    private static DirectoryException UnknownUser(string address) =>
        new(DirectoryError.UnknownMember, $"no gateway user {address} in the directory");

    private T Run<T>(Func<DbConnection, T> work)
    {
        try
        {
            using DbConnection connection = _dialect.OpenConnection();
            return work(connection);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException)
        {
            throw new DirectoryException(DirectoryError.Unavailable, $"directory database ({_dialect.Provider}): {e.Message.ReplaceLineEndings(" ").Trim()}", e);
        }
    }

    private void Write(Action<DbConnection, DbTransaction> work) => Run(connection =>
    {
        using DbTransaction tx = connection.BeginTransaction();
        work(connection, tx);
        Sql.Exec(connection, tx, "UPDATE directory_generation SET generation = generation + 1 WHERE id = 1");
        tx.Commit();
        return 0;
    });
}
