using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MilterSecureList.EndToEnd.Tests.Infrastructure;

/// <summary>A person with an RSA-2048 S/MIME certificate made by openssl (as a user would make one).</summary>
public sealed record Identity(string Name, string Address, string CertPath, string KeyPath)
{
    public static async Task<Identity> CreateAsync(string dir, string name, string domain, DateTimeOffset? notAfter = null)
    {
        string address = $"{name}@{domain}";
        string cert = Path.Combine(dir, name + ".pem");
        string key = Path.Combine(dir, name + ".key");
        string[] ext = ["-addext", $"subjectAltName=email:{address}", "-addext", "keyUsage=critical,digitalSignature,keyEncipherment", "-addext", "extendedKeyUsage=emailProtection"];
        if (notAfter is null)
        {
            await Tool.OpensslAsync(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-keyout", key, "-out", cert,
                "-subj", $"/CN={name}/emailAddress={address}", .. ext]);
        }
        else
        {
            // A certificate that expires soon: `openssl req -days` cannot go below one day, `openssl ca` takes exact dates.
            string csr = Path.Combine(dir, name + ".csr");
            await Tool.OpensslAsync(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", $"/CN={name}/emailAddress={address}", .. ext]);
            string caDir = System.IO.Directory.CreateDirectory(Path.Combine(dir, name + "-ca")).FullName;
            await File.WriteAllTextAsync(Path.Combine(caDir, "index.txt"), "");
            await File.WriteAllTextAsync(Path.Combine(caDir, "serial"), "01\n");
            await File.WriteAllTextAsync(Path.Combine(caDir, "ca.cnf"), $"""
                [ca]
                default_ca = d
                [d]
                database = {caDir}/index.txt
                new_certs_dir = {caDir}
                serial = {caDir}/serial
                default_md = sha256
                policy = p
                copy_extensions = copy
                [p]
                commonName = supplied
                """);
            string start = DateTimeOffset.UtcNow.AddMinutes(-5).ToString("yyyyMMddHHmmss'Z'", CultureInfo.InvariantCulture);
            string end = notAfter.Value.UtcDateTime.ToString("yyyyMMddHHmmss'Z'", CultureInfo.InvariantCulture);
            await Tool.OpensslAsync("ca", "-batch", "-config", Path.Combine(caDir, "ca.cnf"), "-selfsign", "-keyfile", key, "-in", csr, "-out", cert,
                "-startdate", start, "-enddate", end, "-notext");
        }

        return new Identity(name, address, cert, key);
    }

    public X509Certificate2 Certificate() => X509CertificateLoader.LoadCertificateFromFile(CertPath);

    /// <summary>A PKCS#12 with legacy PBE (3DES, SHA-1): gpgsm 2.2 cannot read OpenSSL 3's AES/PBKDF2 ones (docs/cms.md §10).</summary>
    public string ExportLegacyPkcs12(string dir, string password)
    {
        using X509Certificate2 withKey = X509Certificate2.CreateFromPemFile(CertPath, KeyPath);
        string path = Path.Combine(dir, Name + ".p12");
        File.WriteAllBytes(path, withKey.ExportPkcs12(new PbeParameters(PbeEncryptionAlgorithm.TripleDes3KeyPkcs12, HashAlgorithmName.SHA1, 2048), password));
        return path;
    }
}

/// <summary>Building S/MIME posts the way mail clients do, and reading what members receive.</summary>
public static class Smime
{
    /// <summary>A small MIME entity (what the sender's client encrypts), CRLF line ends.</summary>
    public static byte[] Entity(string text) =>
        Encoding.ASCII.GetBytes($"Content-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\nSecond line.\r\n");

    /// <summary>An RFC 5322 message around a DER/BER CMS blob, as clients send application/pkcs7-mime (RFC 8551 §3.3).</summary>
    public static byte[] Message(string from, string to, string subject, byte[] cms, bool authEnveloped = false)
    {
        string smimeType = authEnveloped ? "authEnveloped-data" : "enveloped-data";
        var sb = new StringBuilder();
        sb.Append($"From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@e2e.test>\r\nMIME-Version: 1.0\r\n");
        sb.Append($"Content-Type: application/pkcs7-mime; smime-type={smimeType}; name=smime.p7m\r\n");
        sb.Append("Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n");
        string b64 = Convert.ToBase64String(cms);
        for (int i = 0; i < b64.Length; i += 76)
        {
            sb.Append(b64.AsSpan(i, Math.Min(76, b64.Length - i))).Append("\r\n");
        }

        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>The DER/BER CMS blob inside an application/pkcs7-mime message (headers + base64 body).</summary>
    public static byte[] CmsOf(string messageText)
    {
        string text = messageText.ReplaceLineEndings("\n");
        int split = text.IndexOf("\n\n", StringComparison.Ordinal);
        Assert.True(split > 0, "message has no header/body separator");
        return Convert.FromBase64String(string.Concat(text[(split + 2)..].Split('\n').Select(l => l.Trim())));
    }
}
