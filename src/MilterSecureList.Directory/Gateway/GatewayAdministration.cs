using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Directory.Gateway;

/// <summary>A local CA the gateway issues users' certificates with ([Gateway] CaCertificate, CaKey).</summary>
public sealed record LocalCa(string CertificateFile, string KeyFile, int ValidityDays);

/// <summary>
/// What the <c>securelist user</c> and <c>securelist cert</c> verbs do, over the store and the key
/// directory. User private keys live in the list key directory under the same rules (0700 directory,
/// 0600 files, optional passphrase from [Keys] PassphraseFile), so one check covers both.
/// </summary>
public sealed class GatewayAdministration
{
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string EcOid = "1.2.840.10045.2.1";

    /// <summary>RSA size of generated user keys: 3072 bits (NIST security level 128).</summary>
    public const int GeneratedKeyBits = 3072;

    /// <summary>Key type of <c>user add</c> when none is given: RSA, which every S/MIME client reads.</summary>
    public const ListKeyType DefaultKeyType = ListKeyType.Rsa3072;

    private readonly GatewayStore _store;
    private readonly ListKeyStore _keys;
    private readonly TimeProvider _time;

    public GatewayAdministration(GatewayStore store, ListKeyStore keys, TimeProvider time)
    {
        _store = store;
        _keys = keys;
        _time = time;
    }

    public GatewayStore Store => _store;

    /// <summary>Creates a key pair of KEYTYPE (RSA or EC P-256/P-384) and a certificate for ADDRESS issued by the local CA.</summary>
    public X509Certificate2 AddGenerated(string address, LocalCa ca, EncryptPolicy? encrypt, SignPolicy? sign, bool? opaque, ListKeyType keyType = DefaultKeyType)
    {
        address = EmailAddress.Require(address, "user address");
        RequireNewUser(address);
        using X509Certificate2 caCertificate = CertificateInspector.LoadFile(ca.CertificateFile);
        ListKeyStore.CheckPrivateFile(ca.KeyFile);
        using RSA caKey = (RSA)ListKeyStore.LoadPrivateKey(ca.KeyFile, caCertificate, () => null);
        using AsymmetricAlgorithm key = NewUserKey(keyType);
        CertificateRequest request = UserRequest(address, key);
        DateTimeOffset now = _time.GetUtcNow();
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        DateTimeOffset notAfter = now.AddDays(ca.ValidityDays);
        if (notAfter > caCertificate.NotAfter.ToUniversalTime())
        {
            notAfter = caCertificate.NotAfter.ToUniversalTime();
        }

        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(caCertificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        using X509Certificate2 issued = request.Create(caCertificate.SubjectName, X509SignatureGenerator.CreateForRSA(caKey, RSASignaturePadding.Pkcs1), now.AddMinutes(-5), notAfter, serial);
        X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(issued.RawData);
        string keyFile = _keys.WriteKey(KeyPrefix(address), key, now);
        AddUserRow(address, certificate.RawData, keyFile, [caCertificate.RawData], encrypt, sign, opaque, now);
        return certificate;
    }

    /// <summary>Creates a key pair of KEYTYPE for ADDRESS and returns a PEM certificate signing request for an external CA.</summary>
    public string AddWithRequest(string address, EncryptPolicy? encrypt, SignPolicy? sign, bool? opaque, ListKeyType keyType = DefaultKeyType)
    {
        address = EmailAddress.Require(address, "user address");
        RequireNewUser(address);
        using AsymmetricAlgorithm key = NewUserKey(keyType);
        string csr = UserRequest(address, key).CreateSigningRequestPem();
        DateTimeOffset now = _time.GetUtcNow();
        string keyFile = _keys.WriteKey(KeyPrefix(address), key, now);
        AddUserRow(address, null, keyFile, [], encrypt, sign, opaque, now);
        return csr;
    }

    /// <summary>
    /// Imports a key pair: a PKCS#12 file (CERTIFICATE with PASSWORD), or a PEM certificate with a PEM key
    /// file. The certificate must be RSA or EC (P-256, P-384, P-521), usable now and issued to ADDRESS (unless ALLOWMISMATCH);
    /// further certificates in the input are kept as the chain sent with signatures.
    /// </summary>
    /// <param name="keyPassphraseFile">For a passphrase-protected (encrypted PKCS#8) PEM KEYFILE: the file holding its passphrase.</param>
    public X509Certificate2 Import(string address, string certificateFile, string? keyFile, string? password, bool allowMismatch, EncryptPolicy? encrypt, SignPolicy? sign, bool? opaque, string? keyPassphraseFile = null)
    {
        address = EmailAddress.Require(address, "user address");
        RequireNewUser(address);
        DateTimeOffset now = _time.GetUtcNow();
        (X509Certificate2 certificate, AsymmetricAlgorithm key, List<byte[]> chain) = LoadKeyPair(certificateFile, keyFile, password, keyPassphraseFile);
        using (key)
        {
            RequireUsable(certificate, address, allowMismatch, certificateFile);
            string written = _keys.WriteKey(KeyPrefix(address), key, now);
            AddUserRow(address, certificate.RawData, written, chain, encrypt, sign, opaque, now);
            return certificate;
        }
    }

    /// <summary>Attaches the certificate an external CA issued for a user created with a request.</summary>
    public X509Certificate2 CompleteRequest(string address, string certificateFile, bool allowMismatch)
    {
        GatewayUser user = _store.GetUser(address);
        if (user.CertificateDer is not null)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"gateway user {address} already has a certificate; remove and import the user to replace it");
        }

        var all = new X509Certificate2Collection();
        all.ImportFromPemFile(certificateFile);
        if (all.Count == 0)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{certificateFile}: no PEM certificate");
        }

        X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(all[0].RawData);
        RequireUsable(certificate, address, allowMismatch, certificateFile);
        // Reading the key checks that the certificate belongs to the key this request was made with.
        using (_keys.ReadKey(user.KeyFile, certificate))
        {
        }

        _store.SetUserCertificate(address, certificate.RawData, all.Skip(1).Select(c => c.RawData).ToList());
        return certificate;
    }

    /// <summary>Removes the user and deletes its private key file.</summary>
    public void RemoveUser(string address)
    {
        string keyFile = _store.RemoveUser(address);
        _keys.DeleteKey(keyFile);
    }

    /// <summary>The user's certificate and chain as PEM (what correspondents import).</summary>
    public string ExportCertificate(string address)
    {
        GatewayUser user = _store.GetUser(address);
        if (user.CertificateDer is null)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"gateway user {address} has no certificate yet (import the CA's answer with securelist user import {address} --signed CERT)");
        }

        return string.Concat(new[] { user.CertificateDer }.Concat(user.Chain).Select(d => new string(PemEncoding.Write("CERTIFICATE", d)) + "\n"));
    }

    /// <summary>
    /// Imports a correspondent's certificate. <c>ca-verified</c> requires a chain to ANCHORS; the
    /// certificate must be usable now and issued to ADDRESS (unless ALLOWMISMATCH).
    /// </summary>
    public X509Certificate2 ImportCertificate(string address, string file, CertificateTrust trust, bool pin, bool allowMismatch, TrustAnchors anchors)
    {
        address = EmailAddress.Require(address, "correspondent address");
        if (trust == CertificateTrust.Harvested)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, "--trust harvested is set by the gateway itself; import as manual or ca-verified");
        }

        var all = new X509Certificate2Collection();
        X509Certificate2 certificate = CertificateInspector.LoadFile(file);
        if (File.ReadAllText(file).Contains("-----BEGIN", StringComparison.Ordinal))
        {
            all.ImportFromPemFile(file);
        }

        RequireUsable(certificate, address, allowMismatch, file);
        if (trust == CertificateTrust.CaVerified && anchors.Verify(certificate, all, _time.GetUtcNow()) is { } problem)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{file}: not ca-verified: {problem}");
        }

        _store.ImportCertificate(address, certificate.RawData, CertificateInspector.Sha256Fingerprint(certificate), trust, pin,
            certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime());
        return certificate;
    }

    private void RequireNewUser(string address)
    {
        if (_store.TryGetUser(address, out _))
        {
            throw new DirectoryException(DirectoryError.DuplicateMember, $"gateway user {address} already exists");
        }
    }

    private void RequireUsable(X509Certificate2 certificate, string address, bool allowMismatch, string source)
    {
        CertificateInspector.RequireAcceptable(certificate, address, allowMismatch, _time.GetUtcNow(), source);
        RequireUserKeyType(certificate, source);
    }

    /// <summary>
    /// One key signs and decrypts: RSA, or EC on a curve the CMS code handles (ECDSA signatures, ECDH key agreement).
    /// An EC certificate whose keyUsage lacks digitalSignature or keyAgreement could do only half the job, and .NET
    /// would quietly hand out no key for the other half, so it is refused here with the reason.
    /// </summary>
    private static void RequireUserKeyType(X509Certificate2 certificate, string source)
    {
        switch (certificate.GetKeyAlgorithm())
        {
            case RsaOid:
                return;
            case EcOid:
                using (ECDiffieHellman? ec = certificate.PublicKey.GetECDiffieHellmanPublicKey())
                {
                    string? curve = ec?.ExportParameters(false).Curve.Oid?.Value;
                    if (curve is not ("1.2.840.10045.3.1.7" or "1.3.132.0.34" or "1.3.132.0.35"))
                    {
                        throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: EC gateway users need a P-256, P-384 or P-521 key");
                    }
                }

                X509KeyUsageFlags? usage = certificate.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault()?.KeyUsages;
                const X509KeyUsageFlags both = X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement;
                if (usage is { } u && (u & both) != both)
                {
                    throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: an EC gateway user's certificate must allow digitalSignature and keyAgreement (its keyUsage is {u})");
                }

                return;
            default:
                throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: gateway users need an RSA or EC key pair (signing and decryption with one key)");
        }
    }

    private static AsymmetricAlgorithm NewUserKey(ListKeyType type) => type switch
    {
        ListKeyType.P256 => ECDsa.Create(ECCurve.NamedCurves.nistP256),
        ListKeyType.P384 => ECDsa.Create(ECCurve.NamedCurves.nistP384),
        ListKeyType.Rsa2048 => RSA.Create(2048),
        ListKeyType.Rsa4096 => RSA.Create(4096),
        _ => RSA.Create(GeneratedKeyBits),
    };

    private void AddUserRow(string address, byte[]? certificate, string keyFile, IReadOnlyList<byte[]> chain, EncryptPolicy? encrypt, SignPolicy? sign, bool? opaque, DateTimeOffset now)
    {
        try
        {
            _store.AddUser(new GatewayUser(address, certificate, keyFile, chain, encrypt, sign, opaque, now));
        }
        catch
        {
            _keys.DeleteKey(keyFile);
            throw;
        }
    }

    private static string KeyPrefix(string address) => "user." + address;

    private static CertificateRequest UserRequest(string address, AsymmetricAlgorithm key)
    {
        var subject = new X500DistinguishedNameBuilder();
        subject.AddEmailAddress(address);
        subject.AddCommonName(address);
        // RSA decrypts by key transport (keyEncipherment), EC by key agreement (RFC 5753 §3; RFC 5280 §4.2.1.3).
        (CertificateRequest request, X509KeyUsageFlags decrypt) = key switch
        {
            ECDsa ec => (new CertificateRequest(subject.Build(), ec, ec.KeySize > 256 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256), X509KeyUsageFlags.KeyAgreement),
            _ => (new CertificateRequest(subject.Build(), (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), X509KeyUsageFlags.KeyEncipherment),
        };
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | decrypt | X509KeyUsageFlags.NonRepudiation, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.4")], critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request;
    }

    private static (X509Certificate2 Certificate, AsymmetricAlgorithm Key, List<byte[]> Chain) LoadKeyPair(string certificateFile, string? keyFile, string? password, string? keyPassphraseFile)
    {
        if (keyFile is null)
        {
            // PKCS#12: the end-entity certificate with its key; the rest is the chain.
            X509Certificate2Collection collection;
            try
            {
                collection = X509CertificateLoader.LoadPkcs12CollectionFromFile(certificateFile, password, X509KeyStorageFlags.Exportable | X509KeyStorageFlags.EphemeralKeySet);
            }
            catch (CryptographicException e)
            {
                throw new DirectoryException(DirectoryError.BadPrivateKey, $"{certificateFile}: not a PKCS#12 file or wrong password (for PEM give --key KEYFILE too): {e.Message}", e);
            }

            X509Certificate2? withKey = collection.FirstOrDefault(c => c.HasPrivateKey);
            // .NET's getters hide a key whose keyUsage does not fit their use: ECDSA is tried after ECDH so that
            // RequireUsable can name the real problem of a signing-only EC certificate.
            AsymmetricAlgorithm? pkcs12Key = withKey is null ? null : withKey.GetKeyAlgorithm() switch
            {
                RsaOid => withKey.GetRSAPrivateKey(),
                EcOid => withKey.GetECDiffieHellmanPrivateKey() ?? (AsymmetricAlgorithm?)withKey.GetECDsaPrivateKey(),
                _ => null,
            };
            if (withKey is null || pkcs12Key is null)
            {
                throw new DirectoryException(DirectoryError.BadPrivateKey, $"{certificateFile}: no RSA or EC private key in the PKCS#12 file");
            }

            var chain = collection.Where(c => !ReferenceEquals(c, withKey)).Select(c => c.RawData).ToList();
            X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(withKey.RawData);
            foreach (X509Certificate2 c in collection)
            {
                c.Dispose();
            }

            return (certificate, pkcs12Key, chain);
        }

        ListKeyStore.CheckPrivateFile(keyFile);
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPemFile(certificateFile);
        }
        catch (CryptographicException e)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{certificateFile}: {e.Message}", e);
        }

        if (all.Count == 0)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{certificateFile}: no PEM certificate");
        }

        X509Certificate2 first = X509CertificateLoader.LoadCertificate(all[0].RawData);
        RequireUserKeyType(first, certificateFile);
        AsymmetricAlgorithm key = ListKeyStore.LoadPrivateKey(keyFile, first, () => keyPassphraseFile is null ? null : ListKeyStore.ReadPassphraseFile(keyPassphraseFile));
        return (first, key, all.Skip(1).Select(c => c.RawData).ToList());
    }
}
