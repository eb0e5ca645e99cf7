using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
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

/// <summary>One member as a wrap needs it: the chosen key transport, the pre-encoded recipient identifier and the
/// public key as bytes (slices of the certificate's DER, about 0.5 KB per RSA-2048 member besides the certificate).
/// No X.509 or key object is held: a wrap takes its key object from a bounded cache shared by the process, imported
/// again when it has left it, or, for the RSA members of a list too large for that cache, makes one for that wrap
/// alone (docs/design.md, "Lists of 100,000 members"). Keep these objects across
/// messages. Safe to use from several threads.</summary>
public sealed class CmsRecipient
{
    // Estimated native memory of one imported key object. RSA: 1 KB + 8 bytes per modulus byte, ~3 KB for RSA-2048,
    // measured with OpenSSL 3.0 for .NET's key object and its provider copy; the OpenSSL RSA object used now (the key,
    // and the Montgomery values after the first operation) is smaller, so the estimate errs on the safe side. An ECDH
    // public key and its holder: ~4 KB.
    private const int EcKeyObjectBytes = 4096;

    private readonly ReadOnlyMemory<byte> _subject;
    private X509Certificate2? _certificate;

    private CmsRecipient(ReadOnlyMemory<byte> der, X509Certificate2? certificate, in CertificateAsn fields,
        CmsKeyTransport transport, ReadOnlyMemory<byte> publicKey, ReadOnlyMemory<byte> rid, int keySize, string? curveOid)
    {
        CertificateDer = der;
        _certificate = certificate;
        _subject = fields.Subject;
        KeyTransport = transport;
        PublicKey = publicKey;
        KeySizeBytes = keySize;
        CurveOid = curveOid;
        if (transport == CmsKeyTransport.EcdhStdSha256Aes256Wrap)
        {
            EncodedIssuerAndSerialNumber = rid;
        }
        else
        {
            // The ktri prefix starts with the identifier: keep one copy of it.
            byte[] prefix = RecipientInfoWriter.EncodeKeyTransPrefix(rid.Span, transport == CmsKeyTransport.RsaOaepSha256, keySize, out int ridOffset);
            KeyTransPrefix = prefix;
            EncodedIssuerAndSerialNumber = prefix.AsMemory(ridOffset, rid.Length);
        }
    }

    /// <summary>The member certificate's DER (the caller's bytes; not copied).</summary>
    public ReadOnlyMemory<byte> CertificateDer { get; }

    /// <summary>The certificate as an object: the one passed to <see cref="FromCertificate"/>, else parsed on first
    /// access and then kept. The wrap itself never needs it.</summary>
    public X509Certificate2 Certificate
    {
        get
        {
            if (_certificate is null)
            {
                X509Certificate2 parsed = X509CertificateLoader.LoadCertificate(CertificateDer.Span);
                if (Interlocked.CompareExchange(ref _certificate, parsed, null) is not null)
                {
                    parsed.Dispose();
                }
            }

            return _certificate;
        }
    }

    /// <summary>The subject as RFC 4514-ish text, for messages.</summary>
    public string Subject => NameText(_subject);

    public CmsKeyTransport KeyTransport { get; }

    /// <summary>RSA: the RSAPublicKey DER; EC: the uncompressed point.</summary>
    internal ReadOnlyMemory<byte> PublicKey { get; }

    /// <summary>The member's named curve OID (EC members), else null.</summary>
    internal string? CurveOid { get; }

    /// <summary>The member's named curve (EC members).</summary>
    internal ECCurve Curve => ECCurve.CreateFromValue(CurveOid!);

    internal ReadOnlyMemory<byte> EncodedIssuerAndSerialNumber { get; }

    /// <summary>RSA: modulus bytes; EC: coordinate bytes.</summary>
    internal int KeySizeBytes { get; }

    /// <summary>The member's ktri up to the encryptedKey octets (RSA members only).</summary>
    internal byte[]? KeyTransPrefix { get; }

    /// <summary>How much estimated native memory the process keeps in imported member key objects (default 16 MiB,
    /// about 5,000 members); a wrap for a member whose key object is not kept imports it again. 0 keeps none. A
    /// message with more RSA members than the budget holds wraps them with key objects made for that wrap alone
    /// (<see cref="RsaKeyObjectBytes"/>), so a large list neither fills the cache nor evicts the small lists' keys.</summary>
    public static long KeyObjectCacheBytes
    {
        get => PublicKeyObjectCache.Shared.BudgetBytes;
        set => PublicKeyObjectCache.Shared.BudgetBytes = value;
    }

    /// <summary>Estimated native memory of this RSA member's key object while the cache keeps it.</summary>
    internal int RsaKeyObjectBytes => 1024 + (8 * KeySizeBytes);

    /// <summary>The RSA key object for one wrap (RSA members). Dispose the lease after the operation.</summary>
    internal PublicKeyObjectCache.Lease RentRsa() =>
        PublicKeyObjectCache.Shared.Rent(this, static m => m.ImportRsa(), RsaKeyObjectBytes);


    /// <summary>The ECDH public key object for one derivation (EC members). Dispose the lease after the operation.</summary>
    internal PublicKeyObjectCache.Lease RentEc() =>
        PublicKeyObjectCache.Shared.Rent(this, static m => m.ImportEc(), EcKeyObjectBytes);

    /// <summary>A new RSA key object (the cache's import, and the key of one uncached wrap): OpenSSL's d2i read of the
    /// RSAPublicKey costs a few microseconds, while .NET's import costs several RSA operations (docs/design.md, "Lists
    /// of 100,000 members"). The caller owns it.</summary>
    internal RsaPublicKeyObject ImportRsa() => RsaPublicKeyObject.Import(PublicKey.Span, KeySizeBytes);

    private EcPublicKeyObject ImportEc()
    {
        ReadOnlySpan<byte> point = PublicKey.Span;
        var parameters = new ECParameters
        {
            Curve = Curve,
            Q = new ECPoint { X = point.Slice(1, KeySizeBytes).ToArray(), Y = point.Slice(1 + KeySizeBytes, KeySizeBytes).ToArray() },
        };
        ECDiffieHellman ec = ECDiffieHellman.Create(parameters);
        try
        {
            return new EcPublicKeyObject(ec, ec.PublicKey);
        }
        catch
        {
            ec.Dispose();
            throw;
        }
    }

    /// <summary>Import a member certificate. RSA → ktri (PKCS#1 v1.5, or OAEP-SHA256 when <paramref name="preferOaep"/>);
    /// EC (P-256/384/521) → kari. A keyUsage extension that forbids the needed use is refused.</summary>
    public static CmsRecipient FromCertificate(X509Certificate2 cert, bool preferOaep = false)
    {
        ArgumentNullException.ThrowIfNull(cert);
        return FromDer(cert.RawDataMemory, preferOaep, cert);
    }

    /// <summary>The same as <see cref="FromCertificate"/> from the certificate's DER, with no X.509 object and no key
    /// import: what the list filter uses for every member. <paramref name="certificate"/> must not change afterwards
    /// (the recipient keeps slices of it).</summary>
    public static CmsRecipient FromDer(ReadOnlyMemory<byte> certificate, bool preferOaep = false) => FromDer(certificate, preferOaep, null);

    private static CmsRecipient FromDer(ReadOnlyMemory<byte> der, bool preferOaep, X509Certificate2? certificate)
    {
        // The certificate is the caller's input, not the sender's: a broken one is InvalidArgument (ours to fix).
        CertificateAsn fields = DecoderBoundary.Decode(der, static d => CertificateAsn.Decode(d),
            "a member certificate is malformed", CmsRewrapFailure.InvalidArgument);
        return DecoderBoundary.Decode((der, certificate, fields, preferOaep), static a => Create(a.der, a.certificate, a.fields, a.preferOaep),
            $"member certificate {NameText(fields.Subject)} has an unusable public key", CmsRewrapFailure.InvalidArgument);
    }

    private static CmsRecipient Create(ReadOnlyMemory<byte> der, X509Certificate2? certificate, CertificateAsn fields, bool preferOaep)
    {
        byte[] rid = EncodeIssuerAndSerialNumber(fields);
        if (fields.KeyAlgorithm == Oids.RsaEncryption)
        {
            if (!fields.Allows(CertificateAsn.KeyEnciphermentBit))
            {
                throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument,
                    $"member certificate {NameText(fields.Subject)} does not allow keyEncipherment");
            }

            int modulusBytes = RsaModulusBytes(fields.PublicKey);
            return new CmsRecipient(der, certificate, fields, preferOaep ? CmsKeyTransport.RsaOaepSha256 : CmsKeyTransport.RsaPkcs1,
                fields.PublicKey, rid, modulusBytes, null);
        }

        if (fields.KeyAlgorithm == Oids.EcPublicKey)
        {
            if (!fields.Allows(CertificateAsn.KeyAgreementBit))
            {
                throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument,
                    $"member certificate {NameText(fields.Subject)} does not allow keyAgreement");
            }

            int coordinate = fields.Curve is { } oid ? EcCurves.CoordinateLength(ECCurve.CreateFromValue(oid)) : 0;
            if (coordinate == 0)
            {
                throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm,
                    $"member certificate {NameText(fields.Subject)} uses an EC curve other than P-256/P-384/P-521");
            }

            ReadOnlyMemory<byte> point = UncompressedPoint(fields, der, certificate, coordinate);
            return new CmsRecipient(der, certificate, fields, CmsKeyTransport.EcdhStdSha256Aes256Wrap, point, rid, coordinate, fields.Curve);
        }

        throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm,
            $"member certificate {NameText(fields.Subject)} has public key algorithm {fields.KeyAlgorithm}, not RSA or EC");
    }

    // IssuerAndSerialNumber (RFC 5652 §10.2.4) with the certificate's own issuer and serial encodings.
    private static byte[] EncodeIssuerAndSerialNumber(in CertificateAsn fields)
    {
        var w = new AsnWriter(AsnEncodingRules.DER, 8 + fields.Issuer.Length + fields.SerialNumber.Length);
        using (w.PushSequence())
        {
            w.WriteEncodedValue(fields.Issuer.Span);
            w.WriteEncodedValue(fields.SerialNumber.Span);
        }

        return w.Encode();
    }

    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 §A.1.1)
    private static int RsaModulusBytes(ReadOnlyMemory<byte> rsaPublicKey)
    {
        var outer = new AsnReader(rsaPublicKey, AsnEncodingRules.DER);
        AsnReader key = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        ReadOnlySpan<byte> modulus = key.ReadIntegerBytes().Span;
        ReadOnlySpan<byte> exponent = key.ReadIntegerBytes().Span;
        key.ThrowIfNotEmpty();
        if (modulus[0] >= 0x80 || exponent[0] >= 0x80 || (modulus.Length == 1 && modulus[0] == 0)
            || (exponent.Length == 1 && exponent[0] == 0))
        {
            throw new CryptographicException("the RSA public key is not valid");
        }

        return modulus[0] == 0 ? modulus.Length - 1 : modulus.Length;
    }

    // An uncompressed point (SEC 1 §2.3.3) is used as it is; the rare compressed one is expanded once by OpenSSL.
    private static ReadOnlyMemory<byte> UncompressedPoint(in CertificateAsn fields, ReadOnlyMemory<byte> der, X509Certificate2? certificate,
        int coordinate)
    {
        ReadOnlyMemory<byte> point = fields.PublicKey;
        if (point.Length == 1 + (2 * coordinate) && point.Span[0] == 0x04)
        {
            return point;
        }

        using X509Certificate2? parsed = certificate is null ? X509CertificateLoader.LoadCertificate(der.Span) : null;
        using ECDiffieHellman key = (certificate ?? parsed)!.GetECDiffieHellmanPublicKey()
            ?? throw new CryptographicException("no usable EC public key");
        ECParameters p = key.ExportParameters(false);
        byte[] uncompressed = new byte[1 + (2 * coordinate)];
        uncompressed[0] = 0x04;
        p.Q.X.AsSpan().CopyTo(uncompressed.AsSpan(1 + coordinate - p.Q.X!.Length));
        p.Q.Y.AsSpan().CopyTo(uncompressed.AsSpan(1 + (2 * coordinate) - p.Q.Y!.Length));
        return uncompressed;
    }

    private static string NameText(ReadOnlyMemory<byte> name)
    {
        try
        {
            return new X500DistinguishedName(name.Span).Name;
        }
        catch (CryptographicException)
        {
            return "(unparsable subject)";
        }
    }

    /// <summary>An imported ECDH public key: the key object and the public-key view ECDH derivation takes.</summary>
    internal sealed class EcPublicKeyObject(ECDiffieHellman key, ECDiffieHellmanPublicKey publicKey) : IDisposable
    {
        public ECDiffieHellmanPublicKey PublicKey { get; } = publicKey;

        public void Dispose()
        {
            PublicKey.Dispose();
            key.Dispose();
        }
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
