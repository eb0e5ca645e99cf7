namespace MilterSecureList.KeyRelease;

/// <summary>
/// The key server's tables in the directory database, versioned on their own (<c>release_schema_version</c>) in the
/// style of the directory's migrations: append, never edit a shipped migration; <c>{ID}</c> and <c>{BLOB}</c> are the
/// dialect's types. Message ids are 32 lower-case hex digits; addresses are stored normalised.
/// </summary>
public static class ReleaseMigrations
{
    public static IReadOnlyList<(int Version, string[] Statements)> All { get; } =
    [
        (1,
        [
            """
            CREATE TABLE release_messages (
                message_id TEXT PRIMARY KEY,
                list_norm TEXT NOT NULL,
                sender TEXT NOT NULL,
                mode BIGINT NOT NULL,
                policy {BLOB} NOT NULL,
                binding {BLOB} NOT NULL,
                key_id {BLOB} NOT NULL,
                key_recipient_info {BLOB} NULL,
                key_length BIGINT NOT NULL,
                list_key_id {BLOB} NULL,
                created_at BIGINT NOT NULL,
                not_after BIGINT NOT NULL,
                revoked_at BIGINT NULL,
                deleted_at BIGINT NULL)
            """,
            """
            CREATE TABLE release_revocations (
                message_id TEXT NOT NULL REFERENCES release_messages(message_id) ON DELETE CASCADE,
                member_norm TEXT NOT NULL,
                revoked_at BIGINT NOT NULL,
                PRIMARY KEY (message_id, member_norm))
            """,
            """
            CREATE TABLE release_fetches (
                message_id TEXT NOT NULL REFERENCES release_messages(message_id) ON DELETE CASCADE,
                member_norm TEXT NOT NULL,
                first_at BIGINT NOT NULL,
                last_at BIGINT NOT NULL,
                fetch_count BIGINT NOT NULL,
                PRIMARY KEY (message_id, member_norm))
            """,
            "CREATE TABLE release_nonces (nonce TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
            "CREATE INDEX release_nonces_by_expiry ON release_nonces (expires_at)",
            """
            CREATE TABLE release_audit (
                id {ID},
                message_id TEXT NOT NULL,
                member TEXT NOT NULL,
                at BIGINT NOT NULL,
                client TEXT NOT NULL,
                result TEXT NOT NULL,
                reason TEXT NOT NULL)
            """,
            "CREATE INDEX release_audit_by_message ON release_audit (message_id)",
        ]),
        (2,
        [
            // release-delete (docs/key-release.md §4.3), fixed at deposit like the expiry. Posts deposited before this
            // migration are forgotten at expiry: an expired key is never released anyway.
            "ALTER TABLE release_messages ADD COLUMN delete_policy TEXT NOT NULL DEFAULT 'at-expiry'",
            "ALTER TABLE release_messages ADD COLUMN delete_reason TEXT NULL",
            // For release-delete = after-all: the members at deposit time who have not fetched yet. A member's first
            // fetch removes its row; the post's key material goes when the last row does.
            """
            CREATE TABLE release_pending (
                message_id TEXT NOT NULL REFERENCES release_messages(message_id) ON DELETE CASCADE,
                member_norm TEXT NOT NULL,
                PRIMARY KEY (message_id, member_norm))
            """,
        ]),
    ];

    public static int LatestVersion => All[^1].Version;
}
