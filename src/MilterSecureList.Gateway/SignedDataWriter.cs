using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;

namespace MilterSecureList.Gateway;

/// <summary>
/// Writes a CMS SignedData (RFC 5652 §5) with one SignerInfo directly: SHA-256 over the content, the signed
/// attributes (content type, signing time, message digest, S/MIME capabilities: RFC 8551 §2.5), one signature with
/// the user's key, and the certificates. The same structure SignedCms writes for these inputs, without its object
/// model, its copy of the content and its second pass over the attributes (docs/design.md, "Gateway performance").
/// KEY is RSA (PKCS#1 v1.5, rsaEncryption as the signature algorithm, as SignedCms writes it) or ECDSA
/// (ecdsa-with-SHA256, RFC 5753 §2.1.1).
/// </summary>
internal static class SignedDataWriter
{
    internal const string ContentTypeAttribute = "1.2.840.113549.1.9.3";
    internal const string MessageDigestAttribute = "1.2.840.113549.1.9.4";
    private const string SigningTimeAttribute = "1.2.840.113549.1.9.5";
    private const string EcdsaWithSha256 = "1.2.840.10045.4.3.2";

    public static byte[] Write(ReadOnlySpan<byte> content, X509Certificate2 certificate, AsymmetricAlgorithm key, IReadOnlyList<byte[]> chain, DateTimeOffset now, bool detached)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(content, digest);
        return Write(digest, detached ? [] : content, certificate, key, chain, now, detached);
    }

    /// <summary>A detached SignedData for content whose SHA-256 is DIGEST (the caller hashed it in pieces).</summary>
    public static byte[] WriteDetached(ReadOnlySpan<byte> digest, X509Certificate2 certificate, AsymmetricAlgorithm key, IReadOnlyList<byte[]> chain, DateTimeOffset now) =>
        Write(digest, [], certificate, key, chain, now, detached: true);

    private static byte[] Write(ReadOnlySpan<byte> digest, ReadOnlySpan<byte> content, X509Certificate2 certificate, AsymmetricAlgorithm key, IReadOnlyList<byte[]> chain, DateTimeOffset now, bool detached)
    {
        byte[] attributes = SignedAttributes(digest, now, SmimeCapabilities.OursFor(key));
        (string signatureAlgorithm, byte[] signature) = Sign(attributes, key);

        var writer = new AsnWriter(AsnEncodingRules.DER, (detached ? 0 : content.Length) + 4096);
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier(Oids.SignedData);
            using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            using (writer.PushSequence())
            {
                writer.WriteInteger(1); // only issuerAndSerialNumber and id-data: version 1 (RFC 5652 §5.1)
                using (writer.PushSetOf())
                {
                    Sha256Identifier(writer);
                }

                using (writer.PushSequence())
                {
                    writer.WriteObjectIdentifier(Oids.Data);
                    if (!detached)
                    {
                        using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                        {
                            writer.WriteOctetString(content);
                        }
                    }
                }

                using (writer.PushSetOf(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    writer.WriteEncodedValue(certificate.RawDataMemory.Span);
                    foreach (byte[] der in chain)
                    {
                        writer.WriteEncodedValue(der);
                    }
                }

                using (writer.PushSetOf())
                using (writer.PushSequence())
                {
                    writer.WriteInteger(1);
                    using (writer.PushSequence())
                    {
                        writer.WriteEncodedValue(certificate.IssuerName.RawData);
                        writer.WriteInteger(certificate.SerialNumberBytes.Span);
                    }

                    Sha256Identifier(writer);
                    // The signed attributes as signed (a SET, tag 0x31) carry the implicit [0] tag in the SignerInfo.
                    writer.WriteEncodedValue([0xA0, .. attributes.AsSpan(1)]);
                    using (writer.PushSequence())
                    {
                        writer.WriteObjectIdentifier(signatureAlgorithm); // no parameters, as SignedCms writes it
                    }

                    writer.WriteOctetString(signature);
                }
            }
        }

        return writer.Encode();
    }

    /// <summary>The DER SET OF the signed attributes: what the signature covers (RFC 5652 §5.4).</summary>
    private static byte[] SignedAttributes(ReadOnlySpan<byte> digest, DateTimeOffset now, byte[] capabilities)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER, 256);
        using (writer.PushSetOf())
        {
            Attribute(writer, ContentTypeAttribute).WriteObjectIdentifier(Oids.Data);
            writer.PopSetOf();
            writer.PopSequence();
            AsnWriter time = Attribute(writer, SigningTimeAttribute);
            // RFC 5652 §11.3: UTCTime for the years 1950-2049, GeneralizedTime otherwise.
            DateTimeOffset utc = new(now.UtcDateTime.AddTicks(-(now.UtcDateTime.Ticks % TimeSpan.TicksPerSecond)), TimeSpan.Zero);
            if (utc.Year is >= 1950 and < 2050)
            {
                time.WriteUtcTime(utc);
            }
            else
            {
                time.WriteGeneralizedTime(utc, omitFractionalSeconds: true);
            }

            writer.PopSetOf();
            writer.PopSequence();
            Attribute(writer, MessageDigestAttribute).WriteOctetString(digest);
            writer.PopSetOf();
            writer.PopSequence();
            Attribute(writer, SmimeCapabilities.AttributeOid).WriteEncodedValue(capabilities);
            writer.PopSetOf();
            writer.PopSequence();
        }

        return writer.Encode();
    }

    /// <summary>Opens Attribute ::= SEQUENCE { attrType, attrValues SET OF }; the caller writes the value and pops both.</summary>
    private static AsnWriter Attribute(AsnWriter writer, string oid)
    {
        writer.PushSequence();
        writer.WriteObjectIdentifier(oid);
        writer.PushSetOf();
        return writer;
    }

    private static void Sha256Identifier(AsnWriter writer)
    {
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier(Oids.Sha256);
        }
    }

    private static (string Algorithm, byte[] Signature) Sign(byte[] attributes, AsymmetricAlgorithm key) => key switch
    {
        RSA rsa => (Oids.RsaEncryption, rsa.SignData(attributes, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)),
        ECDsa ec => (EcdsaWithSha256, ec.SignData(attributes, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)),
        _ => throw new CryptographicException($"cannot sign with a {key.GetType().Name} key"),
    };
}
