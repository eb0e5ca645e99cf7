using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Testing;

/// <summary>The request behind the S/MIME certificates of tests and benchmarks: what a mail client's certificate carries.</summary>
public static class SmimeCertificateRequest
{
    /// <summary>CN and rfc822Name ADDRESS, keyUsage digitalSignature and keyEncipherment (critical), emailProtection.</summary>
    public static CertificateRequest For(string address, RSA key)
    {
        var request = new CertificateRequest($"CN={address}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.4")], false));
        return request;
    }
}
