using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory.Storage;
using MilterSecureList.Directory.Tests.Fixtures;
using MilterSecureList.Testing;

namespace MilterSecureList.Directory.Tests;

/// <summary>Store, administration and expansion behaviour, identical on SQLite and PostgreSQL.</summary>
[Collection(BackendCollection.Name)]
public sealed class DirectoryBackendTests(BackendFixture fixture)
{
    public static TheoryData<string> Backends => BackendFixture.Names;

    private DirectoryEnvironment Open(string backend) => new(fixture, backend);

    [PostgresFact]
    public void PostgresBackendIsAvailable()
    {
        // Exists so that a machine without PostgreSQL shows a SKIPPED test with the reason.
        Assert.Null(PostgresServer.UnavailableReason);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void MigrationsRecordSchemaVersionAndAreAppliedOnce(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);

        using var again = new SqlDirectoryStore(SqlDialect.Create(env.Options), env.Time);

        Assert.Equal(DirectoryMigrations.LatestVersion, again.SchemaVersion);
        Assert.True(again.TryGetList("news@example.org", out _));
        Assert.Equal(backend == "postgres" ? DirectoryProvider.Postgres : DirectoryProvider.Sqlite, again.Provider);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void BothSchemasAreMigratedOnceAndANewerOneIsRefusedUnwritten(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        using (DirectoryServices services = DirectoryServices.Open(env.Options, env.Keys, env.Time, requireKeyDirectory: false))
        {
            _ = services.Gateway.GetUsers();
        }

        using (DirectoryServices again = DirectoryServices.Open(env.Options, env.Keys, env.Time, requireKeyDirectory: false))
        {
            Assert.Empty(again.Gateway.GetUsers()); // applied once: a second run finds both schemas current
        }

        using SqlDialect dialect = SqlDialect.Create(env.Options);
        foreach ((string table, string schema, Action open) in new (string, string, Action)[]
        {
            ("gateway_schema_version", "gateway", () => Gateway.GatewayStore.Open(env.Options, env.Time).Dispose()),
            ("schema_version", "directory", () => SqlDirectoryStore.Open(env.Options, env.Time).Dispose()),
        })
        {
            using (System.Data.Common.DbConnection connection = dialect.OpenConnection())
            using (System.Data.Common.DbCommand insert = connection.CreateCommand())
            {
                insert.CommandText = $"INSERT INTO {table} (version) VALUES (99)";
                insert.ExecuteNonQuery();
            }

            DirectoryException error = Assert.Throws<DirectoryException>(open);
            Assert.Equal(DirectoryError.Corrupt, error.Reason);
            Assert.StartsWith($"{schema} schema version 99 is newer than this program (", error.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CreateListStoresSelfSignedCertificateAndA0600Key(string backend)
    {
        using DirectoryEnvironment env = Open(backend);

        env.Admin.CreateList("News@Example.org", ListMode.Double, "owner@example.org", ListKeyType.Rsa2048);

        Assert.True(env.Directory.TryGetList("news@example.ORG", out MailingList list));
        Assert.Equal("News@Example.org", list.Address);
        Assert.Equal(ListMode.Double, list.Mode);
        Assert.Equal("owner@example.org", list.Owner);
        IReadOnlyList<ListKeyRecord> records = env.Store.GetListKeys(list.Address);
        ListKeyRecord record = Assert.Single(records);
        Assert.True(record.IsCurrent);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(env.Keys.Directory, record.KeyFile)));
        using X509Certificate2 cert = env.Admin.GetCurrentCertificate(list.Address);
        Assert.Equal(["News@Example.org"], CertificateInspector.GetEmailAddresses(cert).Take(1));
        Assert.True(CertificateInspector.Check(cert, env.Time.GetUtcNow()).IsUsable);
        Assert.Contains(cert.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.4");
        Assert.InRange((cert.NotAfter - cert.NotBefore).TotalDays, 2 * 365, 3 * 366);

        IReadOnlyList<ListKeyPair> pairs = env.Directory.GetListKeys("news@example.org");
        ListKeyPair pair = Assert.Single(pairs);
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] wrapped = cert.GetRSAPublicKey()!.Encrypt(cek, RSAEncryptionPadding.Pkcs1);
        Assert.Equal(cek, ((RSA)pair.PrivateKey).Decrypt(wrapped, RSAEncryptionPadding.Pkcs1));
        pair.Dispose();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CreatingAnExistingListIsRefused(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);

        DirectoryException error = Assert.Throws<DirectoryException>(() => env.Admin.CreateList("NEWS@example.org", ListMode.Rekey, null, ListKeyType.P256));

        Assert.Equal(DirectoryError.DuplicateList, error.Reason);
        Assert.Single(System.IO.Directory.GetFiles(env.Keys.Directory));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void UnknownListIsRefusedByEveryOperation(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        string cert = env.MemberCert("alice@example.org");

        Action[] operations =
        [
            () => env.Directory.Expand("ghost@example.org"),
            () => env.Directory.GetListKeys("ghost@example.org"),
            () => env.Admin.AddMember("ghost@example.org", "alice@example.org", [cert], false, false),
            () => env.Admin.RemoveMember("ghost@example.org", "alice@example.org"),
            () => env.Admin.GetMembers("ghost@example.org"),
            () => env.Admin.DeleteList("ghost@example.org"),
            () => env.Admin.GetCurrentCertificate("ghost@example.org"),
            () => env.Admin.Rollover("ghost@example.org", null),
            () => env.Admin.SetList("ghost@example.org", null, null, PostingPolicy.MembersOnly, []),
        ];

        foreach (Action operation in operations)
        {
            DirectoryException error = Assert.Throws<DirectoryException>(operation);
            Assert.Equal(DirectoryError.UnknownList, error.Reason);
            Assert.Equal("no list ghost@example.org in the directory", error.Message);
        }

        Assert.False(env.Directory.TryGetList("ghost@example.org", out _));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void MembersAreAddedOnceCaseInsensitivelyAndRemoved(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("news@example.org", "alice@example.org", [env.MemberCert("alice@example.org")], useOaep: true, allowMismatch: false);

        DirectoryException duplicate = Assert.Throws<DirectoryException>(
            () => env.Admin.AddMember("news@example.org", "ALICE@example.org", [env.MemberCert("alice@example.org")], false, false));

        Assert.Equal(DirectoryError.DuplicateMember, duplicate.Reason);
        ListMember member = Assert.Single(env.Admin.GetMembers("news@example.org"));
        Assert.True(member.UseOaep);
        env.Admin.RemoveMember("news@example.org", "Alice@Example.org");
        Assert.Empty(env.Admin.GetMembers("news@example.org"));
        DirectoryException unknown = Assert.Throws<DirectoryException>(() => env.Admin.RemoveMember("news@example.org", "alice@example.org"));
        Assert.Equal(DirectoryError.UnknownMember, unknown.Reason);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void UnacceptableMemberCertificatesAreRefused(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        DateTimeOffset now = env.Time.GetUtcNow();
        string badPem = env.Temp.File("bad.pem");
        File.WriteAllText(badPem, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        using X509Certificate2 k1 = TestCertificates.Ec("a@example.org", ECCurve.CreateFromFriendlyName("secp256k1"));
        string wrongType = TestCertificates.WritePem(k1, env.Temp.File("k1.pem"));

        (string File, string Expected)[] cases =
        [
            (badPem, "malformed certificate"),
            (wrongType, "not supported"),
            (env.MemberCert("a@example.org", bits: 1024), "1024 bits is too small"),
            (env.MemberCert("a@example.org", now.AddYears(-1), now.AddDays(-1)), "expired"),
            (env.MemberCert("a@example.org", now.AddDays(1), now.AddYears(1)), "not valid before"),
            (env.MemberCert("someone@example.org"), "not a@example.org"),
        ];

        foreach ((string file, string expected) in cases)
        {
            DirectoryException error = Assert.Throws<DirectoryException>(() => env.Admin.AddMember("news@example.org", "a@example.org", [file], false, false));
            Assert.Equal(DirectoryError.BadCertificate, error.Reason);
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        }

        Assert.Empty(env.Admin.GetMembers("news@example.org"));
        env.Admin.AddMember("news@example.org", "a@example.org", [env.MemberCert("someone@example.org")], false, allowMismatch: true);
        Assert.Single(env.Admin.GetMembers("news@example.org"));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void RolloverMakesANewKeyCurrentAndKeepsTheOldOne(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        using X509Certificate2 before = env.Admin.GetCurrentCertificate("news@example.org");
        env.Time.Advance(TimeSpan.FromMinutes(1));

        using X509Certificate2 rolled = env.Admin.Rollover("news@example.org", null);

        using X509Certificate2 after = env.Admin.GetCurrentCertificate("news@example.org");
        Assert.Equal(rolled.RawData, after.RawData);
        Assert.NotEqual(before.RawData, after.RawData);
        Assert.Equal("EC P-256", CertificateInspector.DescribeKey(after));
        IReadOnlyList<ListKeyPair> pairs = env.Directory.GetListKeys("news@example.org");
        Assert.Equal(2, pairs.Count);
        Assert.True(pairs[0].IsCurrent);
        Assert.Equal(after.RawData, pairs[0].Certificate.RawData);
        Assert.False(pairs[1].IsCurrent);
        Assert.False(pairs[1].IsRetired);
        Assert.Equal(before.RawData, pairs[1].Certificate.RawData);
        Assert.All(pairs, p => Assert.IsAssignableFrom<ECDiffieHellman>(p.PrivateKey));
        foreach (ListKeyPair pair in pairs)
        {
            pair.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ListOptionsAreValidatedStoredAndReset(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);

        env.Admin.SetList("news@example.org", null, "boss@example.org", PostingPolicy.MembersOnly, ["plaintext=pass", "missing-cert=tempfail", "bounce-address=bounces@example.org"]);

        MailingList list = env.Store.GetList("news@example.org");
        Assert.Equal(PostingPolicy.MembersOnly, list.PostingPolicy);
        Assert.Equal("boss@example.org", list.Owner);
        Assert.Equal("pass", list.GetOption(ListOptionKeys.Plaintext));
        Assert.Equal("tempfail", list.GetOption(ListOptionKeys.MissingCert));
        Assert.Equal("bounces@example.org", list.GetOption(ListOptionKeys.BounceAddress));
        env.Admin.SetList("news@example.org", ListMode.Double, null, null, ["plaintext="]);
        list = env.Store.GetList("news@example.org");
        Assert.Null(list.GetOption(ListOptionKeys.Plaintext));
        Assert.Equal(ListMode.Double, list.Mode);
        Assert.Equal("boss@example.org", list.Owner);

        Assert.Contains("unknown list option 'plaintxt'", Assert.Throws<DirectoryException>(() => env.Admin.SetList("news@example.org", null, null, null, ["plaintxt=pass"])).Message, StringComparison.Ordinal);
        Assert.Contains("not one of reject|pass", Assert.Throws<DirectoryException>(() => env.Admin.SetList("news@example.org", null, null, null, ["plaintext=maybe"])).Message, StringComparison.Ordinal);
        Assert.Contains("not KEY=VALUE", Assert.Throws<DirectoryException>(() => env.Admin.SetList("news@example.org", null, null, null, ["plaintext"])).Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void DeleteListRemovesMembersAndKeyFilesButNotANestedListInUse(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("outer@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.CreateList("inner@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("inner@example.org", "alice@example.org", [env.MemberCert("alice@example.org")], false, false);
        env.Admin.AddMember("outer@example.org", "inner@example.org", [], false, false);

        DirectoryException inUse = Assert.Throws<DirectoryException>(() => env.Admin.DeleteList("inner@example.org"));
        Assert.Contains("is a member of outer@example.org", inUse.Message, StringComparison.Ordinal);

        env.Admin.RemoveMember("outer@example.org", "inner@example.org");
        env.Admin.DeleteList("inner@example.org");
        Assert.False(env.Store.TryGetList("inner@example.org", out _));
        Assert.Single(System.IO.Directory.GetFiles(env.Keys.Directory));
        Assert.Empty(env.Store.GetListsContaining("alice@example.org"));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void NestedListsExpandRecursivelyWithoutDuplicates(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("all@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.CreateList("team@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("team@example.org", "bob@example.org", [env.MemberCert("bob@example.org")], false, false);
        env.Admin.AddMember("team@example.org", "ALICE@example.org", [env.MemberCert("alice@example.org")], false, false);
        env.Admin.AddMember("all@example.org", "team@example.org", [], false, false);
        env.Admin.AddMember("all@example.org", "alice@example.org", [env.MemberCert("alice@example.org")], true, false);
        env.Store.AddMembers("all@example.org", [new ListMember("carol@example.org", [])]); // e.g. a certificate still to come

        ExpandedList all = env.Directory.Expand("ALL@example.org");

        Assert.Equal(["alice@example.org", "carol@example.org", "bob@example.org"], all.Members.Select(m => m.Address));
        Assert.Equal("all@example.org", all.Members[0].ViaList);
        Assert.True(all.Members[0].UseOaep);
        Assert.Equal(CertificateStatus.Missing, all.Members[1].Status);
        Assert.Equal("team@example.org", all.Members[2].ViaList);
        Assert.Equal(CertificateStatus.Usable, all.Members[2].Status);
        Assert.NotNull(all.Members[2].Certificate);
        Assert.Contains("carol@example.org: no certificate", all.Problems);
        Assert.True(all.Contains("BOB@example.org"));
        Assert.False(all.Contains("team@example.org"));
        Assert.Equal(2, env.Directory.Expand("team@example.org").Members.Count);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ACycleOfNestedListsIsRefusedAtAddNamingTheCycle(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        foreach (string name in new[] { "a@example.org", "b@example.org", "c@example.org" })
        {
            env.Admin.CreateList(name, ListMode.Rekey, null, ListKeyType.P256);
        }

        env.Admin.AddMember("a@example.org", "b@example.org", [], false, false);
        env.Admin.AddMember("b@example.org", "c@example.org", [], false, false);

        DirectoryException cycle = Assert.Throws<DirectoryException>(() => env.Admin.AddMember("c@example.org", "A@example.org", [], false, false));
        DirectoryException self = Assert.Throws<DirectoryException>(() => env.Admin.AddMember("a@example.org", "a@example.org", [], false, false));

        Assert.Equal(DirectoryError.Cycle, cycle.Reason);
        Assert.Equal("adding a@example.org to c@example.org would create a cycle: c@example.org -> a@example.org -> b@example.org -> c@example.org", cycle.Message);
        Assert.Equal(DirectoryError.Cycle, self.Reason);
        Assert.Empty(env.Admin.GetMembers("c@example.org"));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ACycleWrittenBehindTheCliIsCaughtAtExpandTime(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("a@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.CreateList("b@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("a@example.org", "b@example.org", [], false, false);
        // Bypass the administration check, as a hand-edited database would.
        env.Store.AddMembers("b@example.org", [new ListMember("a@example.org", [])]);

        DirectoryException error = Assert.Throws<DirectoryException>(() => env.Directory.Expand("a@example.org"));

        Assert.Equal(DirectoryError.Cycle, error.Reason);
        Assert.Equal("nested lists form a cycle: a@example.org -> b@example.org -> a@example.org", error.Message);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void NestingDeeperThanTheLimitIsRefusedAtExpandTime(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        int lists = ListDirectory.DefaultMaxDepth + 2;
        for (int i = 0; i < lists; i++)
        {
            env.Admin.CreateList($"l{i}@example.org", ListMode.Rekey, null, ListKeyType.P256);
            if (i > 0)
            {
                env.Admin.AddMember($"l{i - 1}@example.org", $"l{i}@example.org", [], false, false);
            }
        }

        DirectoryException error = Assert.Throws<DirectoryException>(() => env.Directory.Expand("l0@example.org"));

        Assert.Equal(DirectoryError.DepthExceeded, error.Reason);
        Assert.Empty(env.Directory.Expand("l1@example.org").Members); // depth 8 below l1 is allowed
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ExpansionFlagsCertificatesThatExpiredSinceImportAndPrefersAUsableOne(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        DateTimeOffset now = env.Time.GetUtcNow();
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("news@example.org", "short@example.org", [env.MemberCert("short@example.org", now.AddDays(-1), now.AddDays(10))], false, false);
        env.Admin.AddMember("news@example.org", "renewed@example.org", [env.MemberCert("renewed@example.org", now.AddDays(-1), now.AddDays(10))], false, false);
        env.Admin.SetMember("news@example.org", "renewed@example.org", null, deliveryEnabled: false, [env.MemberCert("renewed@example.org", now.AddDays(-1), now.AddDays(400))], false);

        env.Time.Advance(TimeSpan.FromDays(11));
        ExpandedList expanded = env.Directory.Expand("news@example.org");

        ExpandedMember expired = expanded.Members.Single(m => m.Address == "short@example.org");
        Assert.Equal(CertificateStatus.Expired, expired.Status);
        Assert.Contains("expired on", expired.Problem, StringComparison.Ordinal);
        ExpandedMember renewed = expanded.Members.Single(m => m.Address == "renewed@example.org");
        Assert.Equal(CertificateStatus.Usable, renewed.Status);
        Assert.False(renewed.DeliveryEnabled);
        Assert.True(renewed.Certificate!.NotAfter.ToUniversalTime() > now.AddDays(300));
        Assert.Single(expanded.Problems);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void MembersAndTheirCertificatesComeBackInInsertionOrder(string backend)
    {
        // The member read has no ORDER BY (a sort of every row, certificates included, cost a 100,000-member list
        // most of its cold expansion): the order is restored after the read. Addresses are added against their
        // alphabetical order, which is the order of the index the database reads them by.
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("order@example.org", ListMode.Rekey, null, ListKeyType.P256);
        string[] addresses = ["zed@example.org", "mia@example.org", "amy@example.org", "bob@example.org"];
        MemberCertificate older = MemberCertificate.From(TestCertificates.Rsa("mia@example.org", notAfter: DateTimeOffset.UtcNow.AddDays(30)));
        MemberCertificate newer = MemberCertificate.From(TestCertificates.Rsa("mia@example.org", notAfter: DateTimeOffset.UtcNow.AddDays(60)));
        env.Store.AddMembers("order@example.org", [.. addresses.Select(a => new ListMember(a, a == "mia@example.org" ? [newer, older] : [MemberCertificate.From(TestCertificates.Rsa(a))]))]);

        IReadOnlyList<ListMember> members = env.Store.GetMembers("order@example.org");

        Assert.Equal(addresses, members.Select(m => m.Address));
        Assert.Equal([newer.Der, older.Der], members[1].Certificates.Select(c => c.Der));
        Assert.Equal(addresses, env.Directory.Expand("order@example.org").Members.Select(m => m.Address));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void SelfCopyComesFromMemberElseListOption(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("news@example.org", "a@example.org", [env.MemberCert("a@example.org")], false, false);
        env.Store.AddMembers("news@example.org", [new ListMember("b@example.org", [MemberCertificate.From(TestCertificates.Rsa("b@example.org"))], selfCopy: true)]);

        Assert.All(env.Directory.Expand("news@example.org").Members, m => Assert.True(m.SelfCopy));
        env.Admin.SetList("news@example.org", null, null, null, ["self-copy=no"]);
        ExpandedList expanded = env.Directory.Expand("news@example.org");

        Assert.False(expanded.Members.Single(m => m.Address == "a@example.org").SelfCopy);
        Assert.True(expanded.Members.Single(m => m.Address == "b@example.org").SelfCopy);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void EveryWriteBumpsTheGeneration(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        long g0 = env.Directory.Generation;
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        long g1 = env.Directory.Generation;
        env.Admin.AddMember("news@example.org", "a@example.org", [env.MemberCert("a@example.org")], false, false);
        long g2 = env.Directory.Generation;
        env.Admin.SetMember("news@example.org", "a@example.org", true, null, [], false);
        long g3 = env.Directory.Generation;
        Assert.Throws<DirectoryException>(() => env.Admin.RemoveMember("news@example.org", "nobody@example.org"));
        long g4 = env.Directory.Generation;

        Assert.True(g0 < g1 && g1 < g2 && g2 < g3);
        Assert.Equal(g3, g4); // a refused write rolls back, counter included
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CachedLookupsMakeNoDatabaseRoundTripUntilTheGenerationMoves(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("news@example.org", "a@example.org", [env.MemberCert("a@example.org")], false, false);
        using var cache = new CachingListDirectory(env.Directory, TimeSpan.FromHours(1), TimeProvider.System);
        ExpandedList first = cache.Expand("news@example.org");
        IReadOnlyList<ListKeyPair> keys = cache.GetListKeys("news@example.org");
        int opened = env.Dialect.Opened;

        for (int i = 0; i < 100; i++)
        {
            Assert.True(cache.TryGetList("NEWS@example.org", out _));
            Assert.False(cache.TryGetList("not-a-list@example.org", out _));
            Assert.Same(first, cache.Expand("news@example.org"));
            Assert.Same(keys, cache.GetListKeys("news@example.org"));
        }

        Assert.Equal(opened, env.Dialect.Opened);
        Assert.False(cache.Refresh()); // one counter read, nothing changed
        Assert.Equal(opened + 1, env.Dialect.Opened);

        env.Admin.AddMember("news@example.org", "b@example.org", [env.MemberCert("b@example.org")], false, false);
        Assert.Single(cache.Expand("news@example.org").Members); // still the cached answer
        Assert.True(cache.Refresh());
        Assert.Equal(2, cache.Expand("news@example.org").Members.Count);
        Assert.Equal(env.Directory.Generation, cache.Generation);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CacheTimerPicksUpAChangeWithinFiveSeconds(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        using var cache = new CachingListDirectory(env.Directory, env.Options, TimeProvider.System);
        Assert.Empty(cache.Expand("news@example.org").Members);

        env.Admin.AddMember("news@example.org", "a@example.org", [env.MemberCert("a@example.org")], false, false);

        Poll.Until(() => cache.Expand("news@example.org").Members.Count == 1, "the cache to show the change", TimeSpan.FromSeconds(5));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void GetListKeysRefusesAWorldReadableKeyFile(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        string file = Path.Combine(env.Keys.Directory, env.Store.GetListKeys("news@example.org")[0].KeyFile);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        DirectoryException error = Assert.Throws<DirectoryException>(() => env.Directory.GetListKeys("news@example.org"));

        Assert.Equal(DirectoryError.InsecurePermissions, error.Reason);
        Assert.Contains("0644", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ImportListTakesACaIssuedCertificateAndItsKey(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        (X509Certificate2 cert, AsymmetricAlgorithm key) = ListAdministration.GenerateListCertificate("ca-list@example.org", ListKeyType.Rsa3072, env.Time.GetUtcNow());
        string certFile = TestCertificates.WritePem(cert, env.Temp.File("list.pem"));
        string keyFile = env.Temp.File("list.key");
        File.WriteAllText(keyFile, ((RSA)key).ExportRSAPrivateKeyPem()); // PKCS#1, as openssl genrsa -traditional writes
        string wrongKey = env.Temp.File("wrong.key");
        using (RSA other = RSA.Create(2048))
        {
            File.WriteAllText(wrongKey, other.ExportPkcs8PrivateKeyPem());
        }

        DirectoryException mismatch = Assert.Throws<DirectoryException>(() => env.Admin.ImportList("ca-list@example.org", ListMode.Rekey, null, certFile, wrongKey, false));
        Assert.Contains("does not match", mismatch.Message, StringComparison.Ordinal);
        DirectoryException otherAddress = Assert.Throws<DirectoryException>(() => env.Admin.ImportList("other@example.org", ListMode.Rekey, null, certFile, keyFile, false));
        Assert.Contains("not other@example.org", otherAddress.Message, StringComparison.Ordinal);

        env.Admin.ImportList("ca-list@example.org", ListMode.Rekey, null, certFile, keyFile, false);

        using X509Certificate2 current = env.Admin.GetCurrentCertificate("ca-list@example.org");
        Assert.Equal(cert.RawData, current.RawData);
        ListKeyPair pair = Assert.Single(env.Directory.GetListKeys("ca-list@example.org"));
        Assert.Equal(3072, pair.PrivateKey.KeySize);
        pair.Dispose();
        key.Dispose();
        cert.Dispose();
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void BulkImportAcceptsGoodEntriesAndReportsEachRefusal(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("news@example.org", "old@example.org", [env.MemberCert("old@example.org")], false, false);
        string garbage = env.Temp.File("garbage.pem");
        File.WriteAllText(garbage, "garbage");
        MemberImportEntry[] entries =
        [
            new("1", "a@example.org", env.MemberCert("a@example.org"), false),
            new("2", null, env.MemberCert("b@example.org"), true),
            new("3", "A@example.org", env.MemberCert("a@example.org"), false),
            new("4", "old@example.org", env.MemberCert("old@example.org"), false),
            new("5", "c@example.org", env.MemberCert("d@example.org"), false),
            new("6", "e@example.org", garbage, false),
            new("7", "f@example.org", env.MemberCert("f@example.org", bits: 1024), false),
        ];
        var progress = new List<ImportProgress>();

        ImportSummary summary = env.Admin.ImportMembers("news@example.org", entries, allowMismatch: false, progress.Add);

        Assert.Equal(["a@example.org", "b@example.org"], summary.Accepted);
        Assert.Equal(["3", "4", "5", "6", "7"], summary.Refused.Select(r => r.Source));
        Assert.Contains("already a member", summary.Refused[0].Reason, StringComparison.Ordinal);
        Assert.Contains("already a member", summary.Refused[1].Reason, StringComparison.Ordinal);
        Assert.Contains("issued to d@example.org", summary.Refused[2].Reason, StringComparison.Ordinal);
        Assert.Contains("not a PEM, DER or PKCS#12", summary.Refused[3].Reason, StringComparison.Ordinal);
        Assert.Contains("too small", summary.Refused[4].Reason, StringComparison.Ordinal);
        Assert.Equal(Enumerable.Range(1, 7).Select(i => new ImportProgress(ImportPhase.Checking, i, 7)), progress.Take(7));
        Assert.Equal([new ImportProgress(ImportPhase.Storing, 2, 2)], progress.Skip(7));
        Assert.Equal(3, env.Admin.GetMembers("news@example.org").Count);
        Assert.True(env.Admin.GetMembers("news@example.org").Single(m => m.Address == "b@example.org").UseOaep);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void BulkImportAcrossSeveralBatchesRefusesTheBadRowsInTheMiddleAndStoresTheRest(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("big@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.CreateList("nested@example.org", ListMode.Rekey, null, ListKeyType.P256);
        // One certificate for every row (with --allow-mismatch): the batches, not key generation, are under test.
        string certificate = env.MemberCert("shared@example.org");
        string garbage = env.Temp.File("garbage.pem");
        File.WriteAllText(garbage, "garbage");
        int batch = env.Store.InsertBatchSize;
        int count = (2 * batch) + 10;
        var entries = new List<MemberImportEntry>();
        for (int i = 0; i < count; i++)
        {
            entries.Add(new MemberImportEntry($"members.csv:{i + 2}", $"m{i:D4}@example.org", certificate, UseOaep: i % 2 == 0));
        }

        entries[batch - 1] = entries[batch - 1] with { CertificateFile = garbage };
        entries[batch + 1] = entries[batch + 1] with { Address = "M0003@example.org" };
        entries[batch + 2] = entries[batch + 2] with { Address = "nested@example.org" };
        var progress = new List<ImportProgress>();

        ImportSummary summary = env.Admin.ImportMembers("big@example.org", entries, allowMismatch: true, progress.Add);

        Assert.Equal(
            [$"members.csv:{batch + 1}", $"members.csv:{batch + 3}", $"members.csv:{batch + 4}"],
            summary.Refused.Select(r => r.Source));
        Assert.Contains("not a PEM, DER or PKCS#12", summary.Refused[0].Reason, StringComparison.Ordinal);
        Assert.Contains("M0003@example.org is already a member", summary.Refused[1].Reason, StringComparison.Ordinal);
        Assert.Contains("is a list", summary.Refused[2].Reason, StringComparison.Ordinal);
        Assert.Equal(count - 3, summary.Accepted.Count);
        IReadOnlyList<ListMember> stored = env.Admin.GetMembers("big@example.org");
        Assert.Equal(summary.Accepted, stored.Select(m => m.Address));
        Assert.All(stored, m => Assert.Single(m.Certificates));
        Assert.True(stored.Single(m => m.Address == "m0000@example.org").UseOaep);
        Assert.False(stored.Single(m => m.Address == "m0001@example.org").UseOaep);
        Assert.Equal(count, progress.Count(p => p.Phase == ImportPhase.Checking));
        Assert.Equal(
            [batch, 2 * batch, count - 3],
            progress.Where(p => p.Phase == ImportPhase.Storing).Select(p => p.Done));
        Assert.All(progress.Where(p => p.Phase == ImportPhase.Storing), p => Assert.Equal(count - 3, p.Total));
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void ADuplicateInALaterBatchRollsBackTheBatchesAlreadyWritten(string backend)
    {
        using DirectoryEnvironment env = Open(backend);
        env.Admin.CreateList("big@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.AddMember("big@example.org", "old@example.org", [env.MemberCert("old@example.org")], false, false);
        using X509Certificate2 certificate = X509CertificateLoader.LoadCertificateFromFile(env.MemberCert("shared@example.org"));
        var members = Enumerable.Range(0, env.Store.InsertBatchSize + 10)
            .Select(i => new ListMember($"m{i}@example.org", [new MemberCertificate(certificate.RawData, certificate.NotBefore, certificate.NotAfter, null)]))
            .Append(new ListMember("OLD@example.org", []))
            .ToList();
        long generation = env.Store.GetGeneration();

        DirectoryException error = Assert.Throws<DirectoryException>(() => env.Store.AddMembers("big@example.org", members));

        Assert.Equal(DirectoryError.DuplicateMember, error.Reason);
        Assert.Contains("OLD@example.org is already a member", error.Message, StringComparison.Ordinal);
        Assert.Equal(["old@example.org"], env.Admin.GetMembers("big@example.org").Select(m => m.Address));
        Assert.Equal(generation, env.Store.GetGeneration());
    }
}
