using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §10.2.4
// IssuerAndSerialNumber ::= SEQUENCE {
//   issuer        Name,
//   serialNumber  CertificateSerialNumber }      -- INTEGER
internal readonly struct IssuerAndSerialNumberAsn
{
    public IssuerAndSerialNumberAsn(ReadOnlyMemory<byte> issuer, ReadOnlyMemory<byte> serialNumber)
    {
        Issuer = issuer;
        SerialNumber = serialNumber;
    }

    /// <summary>The encoded Name (a SEQUENCE) as in the input.</summary>
    public ReadOnlyMemory<byte> Issuer { get; }

    /// <summary>The INTEGER contents (two's complement, big-endian) as in the input.</summary>
    public ReadOnlyMemory<byte> SerialNumber { get; }

    public static IssuerAndSerialNumberAsn Decode(AsnReader reader)
    {
        AsnReader seq = reader.ReadSequence();
        ReadOnlyMemory<byte> issuer = seq.ReadEncodedValue();
        if (!new AsnReader(issuer, AsnEncodingRules.BER).PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
        {
            throw new AsnContentException("issuer is not a Name");
        }

        ReadOnlyMemory<byte> serial = seq.ReadIntegerBytes();
        seq.ThrowIfNotEmpty();
        return new IssuerAndSerialNumberAsn(issuer, serial);
    }

    /// <summary>Compare with a certificate: issuer as exact DER bytes (or, failing that, the same RFC 4514 text),
    /// serial as an integer (cms-notes §3.6: leading 0x00 octets differ between encoders).</summary>
    public bool Matches(X509Certificate2 certificate)
    {
        BigInteger mine = new(SerialNumber.Span, isUnsigned: false, isBigEndian: true);
        BigInteger theirs = new(certificate.SerialNumberBytes.Span, isUnsigned: false, isBigEndian: true);
        if (mine != theirs)
        {
            return false;
        }

        if (Issuer.Span.SequenceEqual(certificate.IssuerName.RawData))
        {
            return true;
        }

        try
        {
            return new X500DistinguishedName(Issuer.Span).Name == certificate.IssuerName.Name;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
    }

    public static void Encode(AsnWriter writer, X509Certificate2 certificate)
    {
        using (writer.PushSequence())
        {
            writer.WriteEncodedValue(certificate.IssuerName.RawData);
            writer.WriteInteger(certificate.SerialNumberBytes.Span);
        }
    }
}
