using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;

namespace MilterSecureList.Cms;

/// <summary>One list certificate and its private key (RSA for ktri, EC for kari). A list may hold several
/// (rollover: the old and the new certificate are both accepted). Takes ownership of the private key.</summary>
public sealed class ListKey : IDisposable
{
    private readonly byte[] _ski;
    private readonly byte[] _publicKeySha1;
    private readonly byte[] _publicKeyInfoSha1;
    private readonly bool _ownsKey = true;

    public ListKey(X509Certificate2 certificate, AsymmetricAlgorithm privateKey)
        : this(certificate, privateKey, ownsKey: true)
    {
    }

    /// <summary>With <paramref name="ownsKey"/> false the key is borrowed: the caller (the member-side decryptor, the
    /// milter's key cache over the directory's cached key pairs) keeps disposing it.</summary>
    public ListKey(X509Certificate2 certificate, AsymmetricAlgorithm privateKey, bool ownsKey)
    {
        _ownsKey = ownsKey || privateKey is ECDsa;
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(privateKey);
        Certificate = certificate;
        RequireKeyUsage(certificate);
        switch (privateKey)
        {
            case RSA rsa:
                using (RSA? pub = certificate.GetRSAPublicKey())
                {
                    if (pub is null || !pub.ExportParameters(false).Modulus!.AsSpan().SequenceEqual(rsa.ExportParameters(false).Modulus))
                    {
                        throw new ArgumentException("the RSA private key does not belong to the list certificate", nameof(privateKey));
                    }
                }

                Rsa = rsa;
                RsaPrimitive = new RsaDecryptionPrimitive(rsa);
                break;
            case ECDiffieHellman ecdh:
                Ecdh = ecdh;
                CheckEcMatches(certificate, ecdh.ExportParameters(false));
                break;
            case ECDsa ecdsa:
                // PEM/PKCS#8 EC keys often load as ECDsa; the same key material serves ECDH.
                ECParameters p = ecdsa.ExportParameters(true);
                try
                {
                    Ecdh = ECDiffieHellman.Create(p);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(p.D);
                }

                CheckEcMatches(certificate, Ecdh.ExportParameters(false));
                if (ownsKey)
                {
                    ecdsa.Dispose();
                }

                break;
            default:
                throw new ArgumentException($"list key type {privateKey.GetType().Name} is not RSA or EC", nameof(privateKey));
        }

        _ski = RecipientIdentifierAsn.GetSubjectKeyIdentifier(certificate);
        _publicKeySha1 = RecipientIdentifierAsn.GetPublicKeySha1(certificate);
        _publicKeyInfoSha1 = RecipientIdentifierAsn.GetPublicKeyInfoSha1(certificate);
        Sha256Fingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>Upper-case hex SHA-256 of the certificate (for "not encrypted to the list key" replies).</summary>
    public string Sha256Fingerprint { get; }

    internal RSA? Rsa { get; }

    /// <summary>The bare RSA private operation on this process's own copy of the key (always owned, even when
    /// <see cref="Rsa"/> is borrowed).</summary>
    internal RsaDecryptionPrimitive? RsaPrimitive { get; }

    internal ECDiffieHellman? Ecdh { get; }

    internal bool Matches(RecipientIdentifierAsn rid) => rid.Matches(Certificate, _ski, _publicKeySha1, _publicKeyInfoSha1);

    /// <summary>True when <paramref name="ri"/> (ktri, or kari with one of its RecipientEncryptedKeys) names this key.</summary>
    internal bool IsAddressedBy(in RecipientInfoAsn ri)
    {
        if (ri.KeyTrans is { } ktri)
        {
            return Matches(ktri.Rid);
        }

        if (ri.KeyAgree is { } kari)
        {
            foreach ((RecipientIdentifierAsn rid, _) in kari.RecipientEncryptedKeys)
            {
                if (Matches(rid))
                {
                    return true;
                }
            }
        }

        return false;
    }

    public void Dispose()
    {
        RsaPrimitive?.Dispose();
        if (_ownsKey)
        {
            Rsa?.Dispose();
            Ecdh?.Dispose();
        }
    }

    /// <summary>A keyUsage extension must allow what the list key does: keyEncipherment for RSA (key transport),
    /// keyAgreement for EC (RFC 5280 §4.2.1.3; RFC 5753 §3). Said exactly, because .NET's key getters quietly return
    /// nothing for such a certificate and the problem then looks like a key that does not match.</summary>
    public static void RequireKeyUsage(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        X509KeyUsageFlags? usage = certificate.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault()?.KeyUsages;
        (X509KeyUsageFlags needed, string name) = certificate.PublicKey.Oid.Value == Oids.EcPublicKey
            ? (X509KeyUsageFlags.KeyAgreement, "keyAgreement")
            : (X509KeyUsageFlags.KeyEncipherment, "keyEncipherment");
        if (usage is { } u && (u & needed) == 0)
        {
            throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument,
                $"the list certificate {certificate.Subject} does not allow {name} (its keyUsage is {u}); issue it with keyUsage {name}");
        }
    }

    private static void CheckEcMatches(X509Certificate2 certificate, ECParameters priv)
    {
        using ECDiffieHellman? pub = certificate.GetECDiffieHellmanPublicKey();
        if (pub is null)
        {
            throw new ArgumentException("the list certificate has no EC public key", nameof(certificate));
        }

        ECParameters cp = pub.ExportParameters(false);
        if (!cp.Q.X.AsSpan().SequenceEqual(priv.Q.X) || !cp.Q.Y.AsSpan().SequenceEqual(priv.Q.Y))
        {
            throw new ArgumentException("the EC private key does not belong to the list certificate", nameof(certificate));
        }
    }
}
