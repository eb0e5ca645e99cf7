using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

/// <summary>The small world of <c>--against</c> and <c>--profile</c>: a self-signed list certificate, a 1 MiB post to it
/// and member certificates over a pool of 16 RSA-2048 keys.</summary>
internal static class BenchWorld
{
    public static X509Certificate2 ListCertificate(RSA listRsa)
    {
        var listReq = new CertificateRequest("CN=list", listRsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        listReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment, true));
        return listReq.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
    }

    /// <summary>What an ordinary client sends: AES-256-CBC content of 1 MiB, the key under the list's RSA key (PKCS#1 v1.5).</summary>
    public static byte[] RekeyPost(X509Certificate2 listCert, RSA listRsa)
    {
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] iv = RandomNumberGenerator.GetBytes(16);
        byte[] ciphertext;
        using (Aes aes = Aes.Create())
        {
            aes.Key = cek;
            ciphertext = aes.EncryptCbc(new byte[1 << 20], iv);
        }

        return OracleBench.Envelope(listCert, listRsa.Encrypt(cek, RSAEncryptionPadding.Pkcs1), iv, ciphertext);
    }

    public static X509Certificate2[] MemberCertificates(int count)
    {
        RSA[] pool = Enumerable.Range(0, 16).Select(_ => RSA.Create(2048)).ToArray();
        return Enumerable.Range(0, count).Select(i =>
        {
            var req = new CertificateRequest($"CN=m{i}", pool[i % pool.Length], HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment, true));
            using X509Certificate2 c = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
            return X509CertificateLoader.LoadCertificate(c.RawData);
        }).ToArray();
    }
}
