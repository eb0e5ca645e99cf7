using System.Security.Cryptography.Pkcs;
using MilterSecureList.Testing;

namespace MilterSecureList.Cms.Tests.Infrastructure;

/// <summary>Thin wrappers around the real CMS implementations used as senders and readers.</summary>
public static class Peers
{
    /// <summary><c>openssl cms -encrypt -binary -outform DER [extra] recipients...</c></summary>
    public static byte[] OpensslEncrypt(byte[] plain, IEnumerable<TestIdentity> recipients, params string[] extra)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), plain);
        var args = new List<string> { "cms", "-encrypt", "-binary", "-outform", "DER", "-in", dir.File("in"), "-out", dir.File("out") };
        // -keyopt applies to the preceding -recip, so split it out of the general options.
        var keyopts = new List<string>();
        for (int i = 0; i < extra.Length; i++)
        {
            if (extra[i] == "-keyopt")
            {
                keyopts.Add(extra[i]);
                keyopts.Add(extra[++i]);
            }
            else
            {
                args.Add(extra[i]);
            }
        }

        foreach (TestIdentity recipient in recipients)
        {
            args.Add("-recip");
            args.Add(recipient.CertPath);
            args.AddRange(keyopts);
        }
        ToolResult r = Tool.Run("openssl", args);
        Assert.True(r.ExitCode == 0, "openssl cms -encrypt failed: " + r.StdErr);
        return File.ReadAllBytes(dir.File("out"));
    }

    /// <summary><c>openssl cms -decrypt</c>; null when openssl refuses (wrong key, bad data). The legacy provider is
    /// loaded too, so members can read the old content ciphers (DES, RC2, CAST5, SEED) senders may still use.</summary>
    public static byte[]? OpensslDecrypt(byte[] der, TestIdentity me)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), der);
        ToolResult r = Tool.Run("openssl", ["cms", "-decrypt", "-provider", "legacy", "-provider", "default", "-binary", "-inform", "DER",
            "-in", dir.File("in"), "-out", dir.File("out"), "-recip", me.CertPath, "-inkey", me.KeyPath]);
        return r.ExitCode == 0 ? File.ReadAllBytes(dir.File("out")) : null;
    }

    /// <summary>.NET EnvelopedCms as an independent oracle (RSA ktri + EnvelopedData only on Linux).</summary>
    public static byte[] EnvelopedCmsDecrypt(byte[] der, TestIdentity me)
    {
        var cms = new EnvelopedCms();
        cms.Decode(der);
        RecipientInfo ri = cms.RecipientInfos.Cast<RecipientInfo>().First(r => r.RecipientIdentifier.Type == SubjectIdentifierType.IssuerAndSerialNumber
            && ((System.Security.Cryptography.Xml.X509IssuerSerial)r.RecipientIdentifier.Value!).SerialNumber.Equals(me.Certificate.SerialNumber, StringComparison.OrdinalIgnoreCase));
        cms.Decrypt(ri, me.Key);
        return cms.ContentInfo.Content;
    }
}
