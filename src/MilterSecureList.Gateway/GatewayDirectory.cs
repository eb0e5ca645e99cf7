using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Gateway;

/// <summary>What the gateway looks up: users with their keys, correspondents' certificates, and where harvests go.</summary>
public interface IGatewayDirectory
{
    /// <summary>The gateway user with a certificate for ADDRESS, or null (users still waiting for their CA are not users yet).</summary>
    GatewayUser? FindUser(string address);

    /// <summary>The certificate to encrypt to ADDRESS at NOW (pinned first, pending never), or null.</summary>
    CorrespondentCertificate? FindCertificate(string address, DateTimeOffset now);

    HarvestOutcome Harvest(string address, X509Certificate2 certificate, byte[]? capabilities);

    /// <summary>The user's private key, an <see cref="RSA"/> or an <see cref="ECDsa"/> (EC keys sign as ECDSA and
    /// decrypt by ECDH with the same key material); owned by the directory (callers must not dispose it).</summary>
    AsymmetricAlgorithm GetPrivateKey(GatewayUser user, X509Certificate2 certificate);

    /// <summary>True when the lookups an envelope address needs (the user and, with CERTIFICATE, for a non-user the
    /// certificate to encrypt to) are answered from memory now, without reading the database: the milter then answers
    /// MAIL and RCPT on the thread that read them (docs/design.md, "Gateway performance"). False when unsure.</summary>
    bool AnswersFromMemory(string address, bool certificate) => false;
}

/// <summary>
/// The directory database and key files behind <see cref="IGatewayDirectory"/>. Private keys are read once (file
/// modes checked, passphrase applied) and kept in memory by key file name, which is unique per key. With a
/// <see cref="DirectoryChangeCounter"/> (the daemon) users, correspondents' certificates and list certificates are
/// answered from memory for as long as the directory's change counter stands still, and a harvest that would
/// change nothing is not written again (docs/design.md, "Gateway performance"); without one (the CLI, unit tests)
/// every lookup reads the database.
/// </summary>
public sealed class StoreGatewayDirectory : IGatewayDirectory, IDisposable
{
    private readonly GatewayStore _store;
    private readonly ListKeyStore _keys;
    private readonly ConcurrentDictionary<string, AsymmetricAlgorithm> _privateKeys = new(StringComparer.Ordinal);
    private readonly Func<string, byte[]?>? _listCertificate;
    private readonly DirectoryChangeCounter? _changes;
    private volatile LookupSnapshot _snapshot = new(long.MinValue);

    /// <param name="listCertificate">The current certificate of an encrypted list, so lists are correspondents too.</param>
    /// <param name="changes">The directory's change counter: lookups are cached while it stands still.</param>
    public StoreGatewayDirectory(GatewayStore store, ListKeyStore keys, Func<string, byte[]?>? listCertificate = null, DirectoryChangeCounter? changes = null)
    {
        _store = store;
        _keys = keys;
        _listCertificate = listCertificate;
        _changes = changes;
    }

    public GatewayUser? FindUser(string address) => Snapshot() is { } snapshot
        ? snapshot.Users.GetOrAdd(EmailAddress.Normalize(address), ReadUser)
        : ReadUser(address);

    public CorrespondentCertificate? FindCertificate(string address, DateTimeOffset now)
    {
        LookupSnapshot? snapshot = Snapshot();
        if (_listCertificate is not null)
        {
            CorrespondentCertificate? list = snapshot is null ? ReadListCertificate(address) : snapshot.Lists.GetOrAdd(EmailAddress.Normalize(address), ReadListCertificate);
            if (list is not null)
            {
                return list;
            }
        }

        return snapshot is null
            ? _store.FindEncryptionCertificate(address, now)
            : GatewayStore.ChooseForEncryption(snapshot.Certificates.GetOrAdd(EmailAddress.Normalize(address), _store.GetCertificates), now);
    }

    public bool AnswersFromMemory(string address, bool certificate)
    {
        // A second of margin: the change counter must not fall due between this answer and the lookups it promises.
        if (_changes is null || !_changes.TryPeek(TimeSpan.FromSeconds(1), out long generation) || _snapshot is not { } snapshot || snapshot.Generation != generation)
        {
            return false;
        }

        string key = EmailAddress.Normalize(address);
        if (!snapshot.Users.TryGetValue(key, out GatewayUser? user))
        {
            return false;
        }

        return user is not null || !certificate || (snapshot.Certificates.ContainsKey(key) && (_listCertificate is null || snapshot.Lists.ContainsKey(key)));
    }

    public HarvestOutcome Harvest(string address, X509Certificate2 certificate, byte[]? capabilities)
    {
        string fingerprint = CertificateInspector.Sha256Fingerprint(certificate);
        // Known certificate, same capabilities, nothing written since: the store would answer Refreshed and write
        // the same row again (and bump the change counter, emptying every cache of every daemon on the directory).
        string key = $"{EmailAddress.Normalize(address)} {fingerprint} {(capabilities is null ? "-" : Convert.ToHexString(capabilities))}";
        if (Snapshot() is { } before && before.Harvested.ContainsKey(key))
        {
            return HarvestOutcome.Refreshed;
        }

        HarvestOutcome outcome = _store.Harvest(address, certificate.RawData, fingerprint, capabilities,
            certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime());
        _changes?.Invalidate();
        if (Snapshot() is { } after)
        {
            after.Harvested.TryAdd(key, 0);
        }

        return outcome;
    }

    public AsymmetricAlgorithm GetPrivateKey(GatewayUser user, X509Certificate2 certificate) =>
        _privateKeys.GetOrAdd(user.KeyFile, file => ForSigning(_keys.ReadKey(file, certificate)));

    /// <summary>The key store reads EC keys as ECDH (list keys only decrypt); a user's key signs too, so it is kept
    /// as ECDSA, from which the decryptor derives its ECDH object per message. The exported scalar is zeroed.</summary>
    internal static AsymmetricAlgorithm ForSigning(AsymmetricAlgorithm key)
    {
        if (key is not ECDiffieHellman ecdh)
        {
            return key;
        }

        ECParameters parameters = ecdh.ExportParameters(includePrivateParameters: true);
        try
        {
            return ECDsa.Create(parameters);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(parameters.D);
            ecdh.Dispose();
        }
    }

    /// <summary>SIGHUP: the next lookup reads the change counter (and so the database, when it moved).</summary>
    public void Invalidate() => _changes?.Invalidate();

    public void Dispose()
    {
        foreach (AsymmetricAlgorithm key in _privateKeys.Values)
        {
            key.Dispose();
        }

        _privateKeys.Clear();
    }

    /// <summary>The cached lookups of the current generation (null: no caching).</summary>
    private LookupSnapshot? Snapshot()
    {
        if (_changes is null)
        {
            return null;
        }

        long generation = _changes.Current();
        LookupSnapshot snapshot = _snapshot;
        if (snapshot.Generation != generation)
        {
            snapshot = new LookupSnapshot(generation);
            _snapshot = snapshot;
        }

        return snapshot;
    }

    private GatewayUser? ReadUser(string address) =>
        _store.TryGetUser(address, out GatewayUser user) && user.CertificateDer is not null ? user : null;

    private CorrespondentCertificate? ReadListCertificate(string address)
    {
        if (_listCertificate?.Invoke(address) is not { } der)
        {
            return null;
        }

        using X509Certificate2 list = X509CertificateLoader.LoadCertificate(der);
        return new CorrespondentCertificate(0, address, der, CertificateInspector.Sha256Fingerprint(list), CertificateTrust.Manual, CorrespondentState.Active, true, null,
            list.NotBefore.ToUniversalTime(), list.NotAfter.ToUniversalTime(), list.NotBefore.ToUniversalTime());
    }

    /// <summary>What was read under one value of the change counter, by normalised address.</summary>
    private sealed class LookupSnapshot(long generation)
    {
        public long Generation { get; } = generation;

        public ConcurrentDictionary<string, GatewayUser?> Users { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, IReadOnlyList<CorrespondentCertificate>> Certificates { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, CorrespondentCertificate?> Lists { get; } = new(StringComparer.Ordinal);

        /// <summary>Harvests written under this generation: address, fingerprint and capabilities.</summary>
        public ConcurrentDictionary<string, byte> Harvested { get; } = new(StringComparer.Ordinal);
    }
}

/// <summary>
/// The directory's change counter (<c>directory_generation</c>, bumped by every write of the CLI or a daemon),
/// read at most once per refresh period ([Directory] CacheRefreshSeconds) by the lookup that finds it due. So a
/// change is seen within that period, as the list cache promises, and a database that cannot be read still
/// tempfails the message (the read throws <see cref="DirectoryException"/>) within it.
/// </summary>
public sealed class DirectoryChangeCounter(Func<long> read, TimeSpan refresh, TimeProvider time)
{
    private readonly object _lock = new();
    private long _generation;
    private long _dueTimestamp = long.MinValue;

    /// <summary>The counter as last read; read again first when the refresh period has passed.</summary>
    public long Current()
    {
        long now = time.GetTimestamp();
        if (now < Volatile.Read(ref _dueTimestamp))
        {
            return Volatile.Read(ref _generation);
        }

        lock (_lock)
        {
            if (now >= _dueTimestamp)
            {
                Volatile.Write(ref _generation, read());
                Volatile.Write(ref _dueTimestamp, now + (long)(refresh.TotalSeconds * time.TimestampFrequency));
            }

            return _generation;
        }
    }

    /// <summary>The counter as last read, when <see cref="Current"/> would not read it again for at least MARGIN.</summary>
    public bool TryPeek(TimeSpan margin, out long generation)
    {
        // The due time first: Current() writes the generation before it, so this generation is at least as new.
        long due = Volatile.Read(ref _dueTimestamp);
        generation = Volatile.Read(ref _generation);
        return due != long.MinValue && time.GetTimestamp() + (long)(margin.TotalSeconds * time.TimestampFrequency) < due;
    }

    /// <summary>After a write of our own, or SIGHUP: the next <see cref="Current"/> reads the counter.</summary>
    public void Invalidate() => Volatile.Write(ref _dueTimestamp, long.MinValue);
}
