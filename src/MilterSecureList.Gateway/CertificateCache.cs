using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Directory;

namespace MilterSecureList.Gateway;

/// <summary>
/// Users' and correspondents' certificates as the gateway uses them, parsed once and kept by the SHA-256 of their
/// DER: parsing, the key check and importing the public key for encryption cost several times the RSA operation
/// they serve (docs/design.md, "Gateway performance"). An entry is its DER's, so it never goes stale; the cache
/// is emptied when it grows past a bound, and entries are never disposed (a transaction may still hold one).
/// </summary>
internal sealed class CertificateCache
{
    private const int MaxEntries = 4096;
    private readonly ConcurrentDictionary<string, ParsedCertificate> _entries = new(StringComparer.Ordinal);

    public ParsedCertificate Get(byte[] der)
    {
        string key = Convert.ToBase64String(SHA256.HashData(der));
        if (_entries.TryGetValue(key, out ParsedCertificate? entry))
        {
            return entry;
        }

        if (_entries.Count >= MaxEntries)
        {
            _entries.Clear();
        }

        return _entries.GetOrAdd(key, _ => new ParsedCertificate(X509CertificateLoader.LoadCertificate(der)));
    }
}

/// <summary>One certificate with what the gateway derives from it: the key check and, on first use, its
/// encryption recipient (the public key imported once; <see cref="CmsRecipient"/> is safe across threads).</summary>
internal sealed class ParsedCertificate(X509Certificate2 certificate)
{
    private readonly CertificateCheck _keyCheck = CertificateInspector.CheckKey(certificate);
    private readonly DateTimeOffset _notBefore = certificate.NotBefore.ToUniversalTime();
    private readonly DateTimeOffset _notAfter = certificate.NotAfter.ToUniversalTime();
    private CmsRecipient? _pkcs1;
    private CmsRecipient? _oaep;
    private AsymmetricAlgorithm? _verificationKey;

    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>The public key to check this certificate's signatures with (RSA or ECDSA; null for another kind),
    /// imported once. Verifying runs one OpenSSL context per call, so threads share the key.</summary>
    public AsymmetricAlgorithm? VerificationKey => _verificationKey ??= (AsymmetricAlgorithm?)Certificate.GetRSAPublicKey() ?? Certificate.GetECDsaPublicKey();

    /// <summary>What <see cref="CertificateInspector.Check"/> would say at NOW, without parsing the key again.</summary>
    public bool IsUsableAt(DateTimeOffset now) => _keyCheck.IsUsable && now >= _notBefore && now <= _notAfter;

    public CmsRecipient Recipient(bool oaep) => oaep
        ? _oaep ??= CmsRecipient.FromCertificate(Certificate, preferOaep: true)
        : _pkcs1 ??= CmsRecipient.FromCertificate(Certificate);
}
