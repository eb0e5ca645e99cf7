namespace MilterSecureList.Directory.Storage;

/// <summary>
/// Versioned schema. Append a migration; never edit one that has shipped. <c>{ID}</c> and
/// <c>{BLOB}</c> are replaced by the dialect's types; all else is common SQL.
/// </summary>
public static class DirectoryMigrations
{
    public static IReadOnlyList<(int Version, string[] Statements)> All { get; } =
    [
        (1,
        [
            """
            CREATE TABLE lists (
                id {ID},
                address TEXT NOT NULL,
                address_norm TEXT NOT NULL UNIQUE,
                mode TEXT NOT NULL,
                owner TEXT NULL,
                posting_policy TEXT NOT NULL,
                created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE list_options (
                list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (list_id, name))
            """,
            """
            CREATE TABLE members (
                id {ID},
                list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
                address TEXT NOT NULL,
                address_norm TEXT NOT NULL,
                use_oaep BIGINT NOT NULL,
                delivery_enabled BIGINT NOT NULL,
                self_copy BIGINT NULL,
                UNIQUE (list_id, address_norm))
            """,
            "CREATE INDEX members_by_address ON members (address_norm)",
            """
            CREATE TABLE member_certificates (
                id {ID},
                member_id BIGINT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
                der {BLOB} NOT NULL,
                not_before BIGINT NOT NULL,
                not_after BIGINT NOT NULL,
                key_problem TEXT NULL)
            """,
            "CREATE INDEX member_certificates_by_member ON member_certificates (member_id)",
            """
            CREATE TABLE list_keys (
                id {ID},
                list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
                certificate {BLOB} NOT NULL,
                key_file TEXT NOT NULL,
                is_current BIGINT NOT NULL,
                is_retired BIGINT NOT NULL,
                created_at BIGINT NOT NULL)
            """,
            // The change counter daemons poll: every write transaction bumps it.
            "CREATE TABLE directory_generation (id BIGINT PRIMARY KEY, generation BIGINT NOT NULL)",
            "INSERT INTO directory_generation (id, generation) VALUES (1, 1)",
        ]),
    ];

    public static int LatestVersion => All[^1].Version;
}
