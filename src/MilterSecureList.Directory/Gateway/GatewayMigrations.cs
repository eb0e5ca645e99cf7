namespace MilterSecureList.Directory.Gateway;

/// <summary>
/// The gateway's tables, versioned on their own (<c>gateway_schema_version</c>) so they can evolve
/// independently of the list schema. Same rules as <see cref="Storage.DirectoryMigrations"/>: append,
/// never edit a shipped migration; <c>{ID}</c> and <c>{BLOB}</c> are the dialect's types.
/// </summary>
public static class GatewayMigrations
{
    public static IReadOnlyList<(int Version, string[] Statements)> All { get; } =
    [
        (1,
        [
            """
            CREATE TABLE gateway_users (
                id {ID},
                address TEXT NOT NULL,
                address_norm TEXT NOT NULL UNIQUE,
                certificate {BLOB} NULL,
                key_file TEXT NOT NULL,
                encrypt_policy TEXT NULL,
                sign_policy TEXT NULL,
                opaque BIGINT NULL,
                created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE gateway_user_chain (
                id {ID},
                user_id BIGINT NOT NULL REFERENCES gateway_users(id) ON DELETE CASCADE,
                der {BLOB} NOT NULL)
            """,
            """
            CREATE TABLE gateway_certificates (
                id {ID},
                address TEXT NOT NULL,
                address_norm TEXT NOT NULL,
                der {BLOB} NOT NULL,
                fingerprint TEXT NOT NULL,
                trust TEXT NOT NULL,
                state TEXT NOT NULL,
                pinned BIGINT NOT NULL,
                capabilities {BLOB} NULL,
                not_before BIGINT NOT NULL,
                not_after BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                UNIQUE (address_norm, fingerprint))
            """,
            "CREATE INDEX gateway_certificates_by_address ON gateway_certificates (address_norm)",
        ]),
    ];

    public static int LatestVersion => All[^1].Version;
}
