using System.Data.Common;

namespace MilterSecureList.Directory.Storage;

/// <summary>
/// Applies a table group's migrations that are newer than its own version table (gateway, key release), in one
/// transaction, serialised across processes on PostgreSQL. The list schema itself migrates in <see cref="SqlDirectoryStore"/>.
/// </summary>
internal static class SchemaMigrator
{
    public static void Apply(SqlDialect dialect, DbConnection c, string versionTable, IReadOnlyList<(int Version, string[] Statements)> migrations, string what)
    {
        SqlDirectoryStore.Exec(c, null, $"CREATE TABLE IF NOT EXISTS {versionTable} (version BIGINT NOT NULL)");
        using DbTransaction tx = c.BeginTransaction();
        if (dialect.Provider == DirectoryProvider.Postgres)
        {
            SqlDirectoryStore.Exec(c, tx, $"LOCK TABLE {versionTable} IN ACCESS EXCLUSIVE MODE");
        }

        long current = Convert.ToInt64(SqlDirectoryStore.Scalar(c, tx, $"SELECT COALESCE(MAX(version), 0) FROM {versionTable}") ?? 0L);
        int latest = migrations[^1].Version;
        if (current > latest)
        {
            throw new DirectoryException(DirectoryError.Corrupt, $"{what} schema version {current} is newer than this program ({latest}); upgrade securelist");
        }

        foreach ((int version, string[] statements) in migrations)
        {
            if (version > current)
            {
                foreach (string statement in statements)
                {
                    SqlDirectoryStore.Exec(c, tx, statement.Replace("{ID}", dialect.IdentityColumn).Replace("{BLOB}", dialect.BlobType));
                }

                SqlDirectoryStore.Exec(c, tx, $"INSERT INTO {versionTable} (version) VALUES (@v)", ("v", (long)version));
            }
        }

        tx.Commit();
    }
}
