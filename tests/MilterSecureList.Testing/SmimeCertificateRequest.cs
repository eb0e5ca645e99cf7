using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Testing;

/// <summary>The request behind the S/MIME certificates of tests and benchmarks: what a mail client's certificate carries.</summary>
public static class SmimeCertificateRequest
{
    /// <summary>CN and rfc822Name ADDRESS, emailProtection, and a critical keyUsage: digitalSignature with
    /// keyEncipherment for an RSA key or keyAgreement for an EC one, or <paramref name="keyUsage"/> when given.</summary>
    public static CertificateRequest For(string address, AsymmetricAlgorithm key, X509KeyUsageFlags? keyUsage = null)
    {
        (CertificateRequest request, X509KeyUsageFlags decrypt) = key is ECDsa ec
            ? (new CertificateRequest($"CN={address}", ec, HashAlgorithmName.SHA256), X509KeyUsageFlags.KeyAgreement)
            : (new CertificateRequest($"CN={address}", (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), X509KeyUsageFlags.KeyEncipherment);
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(keyUsage ?? (X509KeyUsageFlags.DigitalSignature | decrypt), true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.4")], false));
        return request;
    }
}
