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

    /// <summary>The issuer as RFC 4514-ish text for logs and the CLI; a Name the BCL cannot read is shown as such.</summary>
    public string IssuerText
    {
        get
        {
            try
            {
                return new X500DistinguishedName(Issuer.Span).Name;
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                return "(unparsable issuer)";
            }
        }
    }

    /// <summary>Compare with a certificate: issuer as exact DER bytes (or, failing that, the same RFC 4514 text),
    /// serial as an integer (docs/cms.md §5: leading 0x00 octets differ between encoders).</summary>
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

    /// <summary>Write the certificate's issuer and serial exactly as encoded in the certificate: some CAs issue
    /// non-minimal serials (e.g. a superfluous leading 0x00), which <see cref="AsnWriter.WriteInteger(ReadOnlySpan{byte}, Asn1Tag?)"/>
    /// would refuse, and readers that compare encodings must see the certificate's own bytes.</summary>
    public static void Encode(AsnWriter writer, X509Certificate2 certificate)
    {
        ReadOnlySpan<byte> serial = certificate.SerialNumberBytes.Span;
        byte[] integer = new byte[DerHeader.TlvSize(serial.Length)];
        int p = DerHeader.Write(integer, 0x02, serial.Length);
        serial.CopyTo(integer.AsSpan(p));
        using (writer.PushSequence())
        {
            writer.WriteEncodedValue(certificate.IssuerName.RawData);
            writer.WriteEncodedValue(integer);
        }
    }
}
