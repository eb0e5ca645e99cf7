using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms;

/// <summary>How the content key is wrapped for one member.</summary>
public enum CmsKeyTransport
{
    /// <summary>ktri, RSA PKCS#1 v1.5 (default: the only form gpgsm 2.2, NSS &lt; 3.100, Thunderbird ≤ 115 read).</summary>
    RsaPkcs1,
    /// <summary>ktri, RSAES-OAEP with SHA-256 and MGF1-SHA-256 (per-member opt-in).</summary>
    RsaOaepSha256,
    /// <summary>kari, ephemeral-static ECDH, dhSinglePass-stdDH-sha256kdf-scheme + id-aes256-wrap.</summary>
    EcdhStdSha256Aes256Wrap,
}

/// <summary>One member: certificate, its public key imported once (importing costs more than the wrap;
/// docs/cms.md §11), the chosen key transport and the pre-encoded issuerAndSerialNumber. Keep these objects
/// across messages. Public-key operations on one instance are safe from several threads.</summary>
public sealed class CmsRecipient
{
    private CmsRecipient(X509Certificate2 certificate, CmsKeyTransport transport, RSA? rsa, ECDiffieHellman? ec, byte[] rid, int keySize)
    {
        Certificate = certificate;
        KeyTransport = transport;
        Rsa = rsa;
        Ec = ec;
        EcPublicKey = ec?.PublicKey;
        EncodedIssuerAndSerialNumber = rid;
        KeySizeBytes = keySize;
        if (rsa is not null)
        {
            KeyTransPrefix = RecipientInfoWriter.EncodeKeyTransPrefix(rid, transport == CmsKeyTransport.RsaOaepSha256, keySize);
        }
    }

    public X509Certificate2 Certificate { get; }

    public CmsKeyTransport KeyTransport { get; }

    internal RSA? Rsa { get; }

    /// <summary>Public-only ECDH object on the member's curve.</summary>
    internal ECDiffieHellman? Ec { get; }

    /// <summary>The member's EC public key as ECDH takes it, made once: <see cref="ECDiffieHellman.PublicKey"/> builds
    /// a new object on every call.</summary>
    internal ECDiffieHellmanPublicKey? EcPublicKey { get; }

    /// <summary>The member's named curve (EC members), kept so each wrap need not export parameters.</summary>
    internal ECCurve Curve { get; private init; }

    internal byte[] EncodedIssuerAndSerialNumber { get; }

    internal int KeySizeBytes { get; }

    /// <summary>The member's ktri up to the encryptedKey octets (RSA members only).</summary>
    internal byte[]? KeyTransPrefix { get; }

    /// <summary>Import a member certificate. RSA → ktri (PKCS#1 v1.5, or OAEP-SHA256 when <paramref name="preferOaep"/>);
    /// EC (P-256/384/521) → kari. A keyUsage extension that forbids the needed use is refused.</summary>
    public static CmsRecipient FromCertificate(X509Certificate2 cert, bool preferOaep = false)
    {
        ArgumentNullException.ThrowIfNull(cert);
        // The certificate is the caller's input, not the sender's: a broken one is InvalidArgument (ours to fix).
        return DecoderBoundary.Decode((cert, preferOaep), static a => Create(a.cert, a.preferOaep),
            $"member certificate {cert.Subject} is malformed or has an unusable public key", CmsRewrapFailure.InvalidArgument);
    }

    private static CmsRecipient Create(X509Certificate2 cert, bool preferOaep)
    {
        X509KeyUsageFlags? usage = null;
        foreach (X509Extension ext in cert.Extensions)
        {
            if (ext is X509KeyUsageExtension ku)
            {
                usage = ku.KeyUsages;
            }
        }

        var w = new AsnWriter(AsnEncodingRules.DER, 64 + cert.IssuerName.RawData.Length);
        IssuerAndSerialNumberAsn.Encode(w, cert);
        byte[] rid = w.Encode();

        string keyAlg = cert.PublicKey.Oid.Value ?? "";
        if (keyAlg == Oids.RsaEncryption)
        {
            if (usage is { } u && (u & X509KeyUsageFlags.KeyEncipherment) == 0)
            {
                throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument,
                    $"member certificate {cert.Subject} does not allow keyEncipherment");
            }

            RSA rsa = cert.GetRSAPublicKey()!;
            return new CmsRecipient(cert, preferOaep ? CmsKeyTransport.RsaOaepSha256 : CmsKeyTransport.RsaPkcs1, rsa, null, rid, (rsa.KeySize + 7) / 8);
        }

        if (keyAlg == Oids.EcPublicKey)
        {
            if (usage is { } u && (u & X509KeyUsageFlags.KeyAgreement) == 0)
            {
                throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument,
                    $"member certificate {cert.Subject} does not allow keyAgreement");
            }

            ECDiffieHellman ec = cert.GetECDiffieHellmanPublicKey()
                ?? throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument, $"member certificate {cert.Subject} has no usable EC key");
            ECParameters p = ec.ExportParameters(false);
            if (EcCurves.CoordinateLength(p.Curve) == 0)
            {
                throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm,
                    $"member certificate {cert.Subject} uses an EC curve other than P-256/P-384/P-521");
            }

            return new CmsRecipient(cert, CmsKeyTransport.EcdhStdSha256Aes256Wrap, null, ec, rid, EcCurves.CoordinateLength(p.Curve))
            {
                Curve = ECCurve.CreateFromOid(p.Curve.Oid),
            };
        }

        throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm,
            $"member certificate {cert.Subject} has public key algorithm {keyAlg}, not RSA or EC");
    }
}

internal static class EcCurves
{
    /// <summary>Field element length for an allowed named curve, or 0.</summary>
    public static int CoordinateLength(ECCurve curve) => curve.Oid?.Value switch
    {
        Oids.Secp256r1 => 32,
        Oids.Secp384r1 => 48,
        Oids.Secp521r1 => 66,
        _ => curve.Oid?.FriendlyName switch
        {
            "nistP256" or "ECDSA_P256" or "secp256r1" or "prime256v1" => 32,
            "nistP384" or "ECDSA_P384" or "secp384r1" => 48,
            "nistP521" or "ECDSA_P521" or "secp521r1" => 66,
            _ => 0,
        },
    };
}
