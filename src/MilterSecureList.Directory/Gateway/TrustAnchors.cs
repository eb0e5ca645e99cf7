using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Directory.Gateway;

/// <summary>
/// The CA certificates the gateway trusts for correspondents' signatures and for <c>ca-verified</c>
/// imports ([Gateway] TrustAnchors: one PEM file of CA certificates). Only these roots count: the
/// system store is never consulted, so an operator decides exactly whom the gateway believes.
/// </summary>
public sealed class TrustAnchors : IDisposable
{
    private const string EmailProtectionOid = "1.3.6.1.5.5.7.3.4";

    private readonly X509Certificate2Collection _roots;

    public TrustAnchors(X509Certificate2Collection roots)
    {
        _roots = roots;
    }

    public static TrustAnchors None { get; } = new([]);

    public int Count => _roots.Count;

    /// <summary>Reads every CERTIFICATE block of a PEM file (a missing or empty path gives no anchors).</summary>
    public static TrustAnchors Load(string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return new TrustAnchors([]);
        }

        if (!File.Exists(path))
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"[Gateway] TrustAnchors: {path} does not exist");
        }

        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (CryptographicException e)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"[Gateway] TrustAnchors: {path}: {e.Message}", e);
        }

        if (roots.Count == 0)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"[Gateway] TrustAnchors: {path} holds no PEM certificate");
        }

        return new TrustAnchors(roots);
    }

    /// <summary>
    /// Builds the chain of CERTIFICATE at NOW through EXTRA (certificates a signature carried) to one of the
    /// anchors; null when it holds, else why not (one line). Revocation is not checked (no CRL/OCSP fetches
    /// from inside a milter).
    /// </summary>
    public string? Verify(X509Certificate2 certificate, X509Certificate2Collection? extra, DateTimeOffset now)
    {
        if (_roots.Count == 0)
        {
            return "no trust anchors are configured ([Gateway] TrustAnchors)";
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(EmailProtectionOid));
        if (extra is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(extra);
        }

        bool ok = chain.Build(certificate);
        try
        {
            if (ok)
            {
                return null;
            }

            X509ChainStatusFlags flags = X509ChainStatusFlags.NoError;
            foreach (X509ChainStatus status in chain.ChainStatus)
            {
                flags |= status.Status;
            }

            return Describe(flags);
        }
        finally
        {
            foreach (X509ChainElement element in chain.ChainElements)
            {
                if (!ReferenceEquals(element.Certificate, certificate))
                {
                    element.Certificate.Dispose();
                }
            }
        }
    }

    private static string Describe(X509ChainStatusFlags flags)
    {
        if ((flags & X509ChainStatusFlags.NotTimeValid) != 0)
        {
            return "a certificate in the chain is expired or not yet valid";
        }

        if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
        {
            return "the certificate does not chain to a trusted CA";
        }

        if ((flags & X509ChainStatusFlags.NotSignatureValid) != 0)
        {
            return "a certificate signature in the chain is invalid";
        }

        if ((flags & (X509ChainStatusFlags.NotValidForUsage | X509ChainStatusFlags.InvalidExtension)) != 0)
        {
            return "the certificate is not valid for e-mail protection";
        }

        return $"the certificate chain is invalid ({flags})";
    }

    public void Dispose()
    {
        foreach (X509Certificate2 root in _roots)
        {
            root.Dispose();
        }
    }
}
