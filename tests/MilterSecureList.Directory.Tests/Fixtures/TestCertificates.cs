using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Directory.Tests.Fixtures;

/// <summary>
/// Member certificates made on the fly with CertificateRequest (no checked-in key material).
/// RSA keys are generated once per size and reused: key generation dominates test time.
/// </summary>
public static class TestCertificates
{
    private static readonly Dictionary<int, RSA> s_rsa = [];
    private static readonly object s_lock = new();

    public static RSA SharedRsa(int bits)
    {
        lock (s_lock)
        {
            if (!s_rsa.TryGetValue(bits, out RSA? rsa))
            {
                rsa = RSA.Create(bits);
                s_rsa[bits] = rsa;
            }

            return rsa;
        }
    }

    public static X509Certificate2 Rsa(
        string? sanEmail,
        int bits = 2048,
        DateTimeOffset? notBefore = null,
        DateTimeOffset? notAfter = null,
        X509KeyUsageFlags? keyUsage = X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature,
        string? subjectEmail = null)
    {
        RSA key = SharedRsa(bits);
        var request = new CertificateRequest(Subject(sanEmail ?? subjectEmail, subjectEmail), key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return Finish(request, sanEmail, notBefore, notAfter, keyUsage);
    }

    public static X509Certificate2 Ec(string? sanEmail, ECCurve curve, X509KeyUsageFlags? keyUsage = X509KeyUsageFlags.KeyAgreement | X509KeyUsageFlags.DigitalSignature)
    {
        using ECDsa key = ECDsa.Create(curve);
        var request = new CertificateRequest(Subject(sanEmail, null), key, HashAlgorithmName.SHA256);
        return Finish(request, sanEmail, null, null, keyUsage, X509SignatureGenerator.CreateForECDsa(key));
    }

    private static X500DistinguishedName Subject(string? commonName, string? emailAddress)
    {
        var builder = new X500DistinguishedNameBuilder();
        if (emailAddress is not null)
        {
            builder.AddEmailAddress(emailAddress);
        }

        builder.AddCommonName(commonName ?? "test");
        return builder.Build();
    }

    private static X509Certificate2 Finish(CertificateRequest request, string? sanEmail, DateTimeOffset? notBefore, DateTimeOffset? notAfter, X509KeyUsageFlags? keyUsage, X509SignatureGenerator? signer = null)
    {
        if (sanEmail is not null)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddEmailAddress(sanEmail);
            request.CertificateExtensions.Add(san.Build());
        }

        if (keyUsage is { } usage)
        {
            request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
        }

        DateTimeOffset now = DateTimeOffset.UtcNow;
        // Create with an explicit signer: CreateSelfSigned refuses EC keys whose keyUsage is keyAgreement only.
        signer ??= X509SignatureGenerator.CreateForRSA(SharedRsaFor(request), RSASignaturePadding.Pkcs1);
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using X509Certificate2 made = request.Create(request.SubjectName, signer, notBefore ?? now.AddDays(-1), notAfter ?? now.AddYears(1), serial);
        return X509CertificateLoader.LoadCertificate(made.RawData);
    }

    private static RSA SharedRsaFor(CertificateRequest request)
    {
        lock (s_lock)
        {
            foreach (RSA rsa in s_rsa.Values)
            {
                if (request.PublicKey.EncodedKeyValue.RawData.AsSpan().SequenceEqual(rsa.ExportRSAPublicKey()))
                {
                    return rsa;
                }
            }
        }

        throw new InvalidOperationException("no shared RSA key for this request");
    }

    public static string WritePem(X509Certificate2 certificate, string path)
    {
        File.WriteAllText(path, certificate.ExportCertificatePem() + "\n");
        return path;
    }

    public static string WriteDer(X509Certificate2 certificate, string path)
    {
        File.WriteAllBytes(path, certificate.RawData);
        return path;
    }

    /// <summary>A PKCS#12 with the certificate and its (shared) RSA key, as mail clients export it.</summary>
    public static string WritePkcs12(X509Certificate2 certificate, int bits, string password, string path)
    {
        using X509Certificate2 withKey = certificate.CopyWithPrivateKey(SharedRsa(bits));
        File.WriteAllBytes(path, withKey.Export(X509ContentType.Pkcs12, password));
        return path;
    }
}
