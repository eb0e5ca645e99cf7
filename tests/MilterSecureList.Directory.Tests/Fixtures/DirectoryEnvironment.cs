using System.Data.Common;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory.Storage;

namespace MilterSecureList.Directory.Tests.Fixtures;

/// <summary>A fresh directory (database + key dir) on one back end, with a hand-moved clock.</summary>
public sealed class DirectoryEnvironment : IDisposable
{
    public DirectoryEnvironment(BackendFixture fixture, string backend)
    {
        Temp = new TempDirectory();
        Options = fixture.NewDirectory(backend, Temp.Path);
        Keys = new KeysOptions { Directory = Temp.File("keys") };
        Time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        Dialect = new CountingDialect(SqlDialect.Create(Options));
        Store = new SqlDirectoryStore(Dialect, Time);
        KeyStore = new ListKeyStore(Keys);
        Admin = new ListAdministration(Store, KeyStore, Time);
        Directory = new ListDirectory(Store, KeyStore, Time);
    }

    public TempDirectory Temp { get; }

    public DirectoryOptions Options { get; }

    public KeysOptions Keys { get; }

    public ManualTimeProvider Time { get; }

    public CountingDialect Dialect { get; }

    public SqlDirectoryStore Store { get; }

    public ListKeyStore KeyStore { get; }

    public ListAdministration Admin { get; }

    public ListDirectory Directory { get; }

    /// <summary>Writes a PEM member certificate issued to ADDRESS and returns its path.</summary>
    public string MemberCert(string address, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, int bits = 2048)
    {
        using X509Certificate2 cert = TestCertificates.Rsa(address, bits, notBefore, notAfter);
        return TestCertificates.WritePem(cert, Temp.File($"{Guid.NewGuid():N}.pem"));
    }

    public void Dispose()
    {
        Store.Dispose();
        Temp.Dispose();
    }
}

/// <summary>Counts database connections, to prove cached lookups make none.</summary>
public sealed class CountingDialect(SqlDialect inner) : SqlDialect
{
    private int _opened;

    public int Opened => Volatile.Read(ref _opened);

    /// <summary>When set, every connection attempt fails as an unreachable database would.</summary>
    public bool Down { get; set; }

    public override DirectoryProvider Provider => inner.Provider;

    public override string IdentityColumn => inner.IdentityColumn;

    public override string BlobType => inner.BlobType;

    public override string? MigrationLockSql(string versionTable) => inner.MigrationLockSql(versionTable);

    public override int InsertBatchRows => inner.InsertBatchRows;

    public override void Prepare(DbConnection connection) => inner.Prepare(connection);

    public override DbConnection OpenConnection()
    {
        Interlocked.Increment(ref _opened);
        if (Down)
        {
            throw new UnreachableDatabaseException();
        }

        return inner.OpenConnection();
    }

    public override void Dispose()
    {
        inner.Dispose();
        base.Dispose();
    }
}

public sealed class UnreachableDatabaseException() : DbException("connection refused (test)");
