using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Cms.Tests.Infrastructure;

/// <summary>One certificate with its private key, written as PEM files for the command-line peers.</summary>
public sealed class TestIdentity
{
    public required string Name { get; init; }

    public required string Email { get; init; }

    public required X509Certificate2 Certificate { get; init; }

    public required AsymmetricAlgorithm Key { get; init; }

    public required string CertPath { get; init; }

    public required string KeyPath { get; init; }

    public bool IsEc => Key is ECDsa;

    /// <summary>A fresh private-key object (ListKey takes ownership of what it gets).</summary>
    public AsymmetricAlgorithm CloneKey()
    {
        if (Key is RSA rsa)
        {
            var c = RSA.Create();
            c.ImportParameters(rsa.ExportParameters(true));
            return c;
        }

        return ECDiffieHellman.Create(((ECDsa)Key).ExportParameters(true));
    }

    public ListKey ToListKey() => new(Certificate, CloneKey());

    public X509Certificate2 WithKey() => Key is RSA rsa ? Certificate.CopyWithPrivateKey(rsa) : Certificate.CopyWithPrivateKey((ECDsa)Key);
}

/// <summary>A throwaway PKI generated at test time with .NET CertificateRequest: a CA and S/MIME-ish end-entity
/// certificates (keyUsage keyEncipherment / keyAgreement, SAN rfc822Name, SKI/AKI, emailProtection EKU).
/// Generated once per test run and shared (RSA key generation is the slow part).</summary>
public sealed class TestPki : IDisposable
{
    private static readonly Lazy<TestPki> s_shared = new(() => new TestPki());
    private readonly Dictionary<string, TestIdentity> _identities = new();
    private readonly object _lock = new();

    public static TestPki Shared => s_shared.Value;

    public string Directory { get; }

    public TestIdentity Ca { get; }

    private TestPki()
    {
        Directory = Path.Combine(Path.GetTempPath(), "msl-cms-pki-" + Guid.NewGuid().ToString("N"));
        RemoveStaleDirectories();
        System.IO.Directory.CreateDirectory(Directory);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
        System.Runtime.Loader.AssemblyLoadContext.Default.Unloading += _ => Dispose();
        RSA caKey = RSA.Create(2048);
        var req = new CertificateRequest("CN=MilterSecureList Test CA, O=MilterSecureList Tests", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        X509Certificate2 ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));
        Ca = Save("ca", "ca@example.test", ca, caKey);
    }

    /// <summary>Get (or create) the identity called <paramref name="name"/>: "rsa" (2048), "rsa4096", "p256", "p384", "p521".</summary>
    public TestIdentity Get(string name, string kind = "rsa")
    {
        lock (_lock)
        {
            if (_identities.TryGetValue(name, out TestIdentity? id))
            {
                return id;
            }

            id = Issue(name, kind);
            _identities[name] = id;
            return id;
        }
    }

    private TestIdentity Issue(string name, string kind)
    {
        string email = name + "@example.test";
        string subject = $"CN={name}, O=MilterSecureList Tests, E={email}";
        AsymmetricAlgorithm key;
        CertificateRequest req;
        X509KeyUsageFlags usage;
        switch (kind)
        {
            case "rsa":
            case "rsa4096":
                var rsa = RSA.Create(kind == "rsa" ? 2048 : 4096);
                key = rsa;
                req = new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                usage = X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature;
                break;
            default:
                ECCurve curve = kind switch
                {
                    "p256" => ECCurve.NamedCurves.nistP256,
                    "p384" => ECCurve.NamedCurves.nistP384,
                    "p521" => ECCurve.NamedCurves.nistP521,
                    _ => throw new ArgumentException(kind),
                };
                var ec = ECDsa.Create(curve);
                key = ec;
                req = new CertificateRequest(subject, ec, HashAlgorithmName.SHA256);
                usage = X509KeyUsageFlags.KeyAgreement | X509KeyUsageFlags.DigitalSignature;
                break;
        }

        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.4")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(email);
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca.Certificate, true, false));
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        X509Certificate2 cert = req.Create(Ca.Certificate.SubjectName, X509SignatureGenerator.CreateForRSA((RSA)Ca.Key, RSASignaturePadding.Pkcs1),
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(2), serial);
        return Save(name, email, X509CertificateLoader.LoadCertificate(cert.RawData), key);
    }

    private TestIdentity Save(string name, string email, X509Certificate2 cert, AsymmetricAlgorithm key)
    {
        string certPath = Path.Combine(Directory, name + ".pem");
        string keyPath = Path.Combine(Directory, name + ".key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return new TestIdentity { Name = name, Email = email, Certificate = cert, Key = key, CertPath = certPath, KeyPath = keyPath };
    }

    /// <summary>PKCS#12 with legacy PBE (3DES + SHA-1): gpgsm 2.2 cannot read OpenSSL 3's AES/PBKDF2 PKCS#12 (docs/cms.md §10).</summary>
    public string ExportLegacyPkcs12(TestIdentity id, string password)
    {
        string path = Path.Combine(Directory, id.Name + ".p12");
        byte[] pfx = id.WithKey().ExportPkcs12(new PbeParameters(PbeEncryptionAlgorithm.TripleDes3KeyPkcs12, HashAlgorithmName.SHA1, 2048), password);
        File.WriteAllBytes(path, pfx);
        return path;
    }

    public void Dispose()
    {
        try
        {
            if (System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The test host is sometimes ended before ProcessExit handlers run; remove our own PKI directories
    /// left behind by earlier runs (only ones older than two hours, so a concurrent run is never touched).</summary>
    private static void RemoveStaleDirectories()
    {
        foreach (string dir in System.IO.Directory.EnumerateDirectories(Path.GetTempPath(), "msl-cms-pki-*"))
        {
            try
            {
                if (System.IO.Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow.AddHours(-2))
                {
                    System.IO.Directory.Delete(dir, recursive: true);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
