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
}

/// <summary>
/// The directory database and key files behind <see cref="IGatewayDirectory"/>. Private keys are read once (file
/// modes checked, passphrase applied) and kept in memory by key file name, which is unique per key.
/// </summary>
public sealed class StoreGatewayDirectory : IGatewayDirectory, IDisposable
{
    private readonly GatewayStore _store;
    private readonly ListKeyStore _keys;
    private readonly ConcurrentDictionary<string, AsymmetricAlgorithm> _privateKeys = new(StringComparer.Ordinal);
    private readonly Func<string, byte[]?>? _listCertificate;

    /// <param name="listCertificate">The current certificate of an encrypted list, so lists are correspondents too.</param>
    public StoreGatewayDirectory(GatewayStore store, ListKeyStore keys, Func<string, byte[]?>? listCertificate = null)
    {
        _store = store;
        _keys = keys;
        _listCertificate = listCertificate;
    }

    public GatewayUser? FindUser(string address) =>
        _store.TryGetUser(address, out GatewayUser user) && user.CertificateDer is not null ? user : null;

    public CorrespondentCertificate? FindCertificate(string address, DateTimeOffset now)
    {
        if (_listCertificate?.Invoke(address) is { } der)
        {
            using X509Certificate2 list = X509CertificateLoader.LoadCertificate(der);
            return new CorrespondentCertificate(0, address, der, CertificateInspector.Sha256Fingerprint(list), CertificateTrust.Manual, CorrespondentState.Active, true, null,
                list.NotBefore.ToUniversalTime(), list.NotAfter.ToUniversalTime(), list.NotBefore.ToUniversalTime());
        }

        return _store.FindEncryptionCertificate(address, now);
    }

    public HarvestOutcome Harvest(string address, X509Certificate2 certificate, byte[]? capabilities) =>
        _store.Harvest(address, certificate.RawData, CertificateInspector.Sha256Fingerprint(certificate), capabilities,
            certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime());

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

    public void Dispose()
    {
        foreach (AsymmetricAlgorithm key in _privateKeys.Values)
        {
            key.Dispose();
        }

        _privateKeys.Clear();
    }
}
