using System.Data.Common;

namespace MilterSecureList.Directory.Storage;

/// <summary>
/// Brings one versioned schema up to date: the list schema (<see cref="DirectoryMigrations"/>, table
/// <c>schema_version</c>) and the gateway's (<see cref="Gateway.GatewayMigrations"/>, <c>gateway_schema_version</c>)
/// are applied by the same steps. Every missing migration runs in one transaction, under the dialect's lock on the
/// version table so that two processes starting at once do not both apply it; a database newer than this program
/// is refused rather than written to.
/// </summary>
internal static class SchemaMigrator
{
    /// <param name="schema">The schema's name in the refusal ("directory", "gateway").</param>
    /// <param name="versionTable">Where applied versions are recorded, one row each.</param>
    /// <param name="migrations">Append-only, ascending; <c>{ID}</c> and <c>{BLOB}</c> become the dialect's types.</param>
    public static void Apply(DbConnection connection, SqlDialect dialect, string schema, string versionTable, IReadOnlyList<(int Version, string[] Statements)> migrations)
    {
        SqlDirectoryStore.Exec(connection, null, $"CREATE TABLE IF NOT EXISTS {versionTable} (version BIGINT NOT NULL)");
        using DbTransaction tx = connection.BeginTransaction();
        if (dialect.MigrationLockSql(versionTable) is { } lockSql)
        {
            SqlDirectoryStore.Exec(connection, tx, lockSql);
        }

        int latest = migrations[^1].Version;
        long current = Convert.ToInt64(SqlDirectoryStore.Scalar(connection, tx, $"SELECT COALESCE(MAX(version), 0) FROM {versionTable}") ?? 0L);
        if (current > latest)
        {
            throw new DirectoryException(DirectoryError.Corrupt, $"{schema} schema version {current} is newer than this program ({latest}); upgrade securelist");
        }

        foreach ((int version, string[] statements) in migrations)
        {
            if (version <= current)
            {
                continue;
            }

            foreach (string statement in statements)
            {
                SqlDirectoryStore.Exec(connection, tx, statement.Replace("{ID}", dialect.IdentityColumn).Replace("{BLOB}", dialect.BlobType));
            }

            SqlDirectoryStore.Exec(connection, tx, $"INSERT INTO {versionTable} (version) VALUES (@v)", ("v", (long)version));
        }

        tx.Commit();
    }
}
