using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5280 §4.1, only as far as a CMS recipient needs it:
// Certificate  ::=  SEQUENCE  {
//   tbsCertificate       TBSCertificate,
//   signatureAlgorithm   AlgorithmIdentifier,
//   signatureValue       BIT STRING  }
// TBSCertificate  ::=  SEQUENCE  {
//   version         [0]  EXPLICIT Version DEFAULT v1,
//   serialNumber         CertificateSerialNumber,      -- INTEGER
//   signature            AlgorithmIdentifier,
//   issuer               Name,
//   validity             Validity,
//   subject              Name,
//   subjectPublicKeyInfo SubjectPublicKeyInfo,
//   issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,
//   subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,
//   extensions      [3]  EXPLICIT Extensions OPTIONAL }
// SubjectPublicKeyInfo  ::=  SEQUENCE  {
//   algorithm            AlgorithmIdentifier,
//   subjectPublicKey     BIT STRING  }
// Extension  ::=  SEQUENCE  { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }

/// <summary>
/// The fields of a member certificate a wrap needs, read straight from its DER with no X.509 object and no key import
/// (docs/design.md, "Lists of 100,000 members"): the issuer and serial as encoded, the subject, the public key and
/// the keyUsage bits. Every field is a slice of the certificate's own bytes. The signature is not checked: the
/// directory checked the certificate when it was imported.
/// </summary>
internal readonly struct CertificateAsn
{
    private const string KeyUsageOid = "2.5.29.15";

    private CertificateAsn(ReadOnlyMemory<byte> serialNumber, ReadOnlyMemory<byte> issuer, ReadOnlyMemory<byte> subject,
        ReadOnlyMemory<byte> subjectPublicKeyInfo, string keyAlgorithm, string? curve, ReadOnlyMemory<byte> publicKey, int? keyUsage)
    {
        SerialNumber = serialNumber;
        Issuer = issuer;
        Subject = subject;
        SubjectPublicKeyInfo = subjectPublicKeyInfo;
        KeyAlgorithm = keyAlgorithm;
        Curve = curve;
        PublicKey = publicKey;
        KeyUsage = keyUsage;
    }

    /// <summary>The serialNumber INTEGER, tag and length included, as encoded.</summary>
    public ReadOnlyMemory<byte> SerialNumber { get; }

    /// <summary>The issuer Name, as encoded.</summary>
    public ReadOnlyMemory<byte> Issuer { get; }

    /// <summary>The subject Name, as encoded.</summary>
    public ReadOnlyMemory<byte> Subject { get; }

    /// <summary>The whole SubjectPublicKeyInfo, as encoded.</summary>
    public ReadOnlyMemory<byte> SubjectPublicKeyInfo { get; }

    public string KeyAlgorithm { get; }

    /// <summary>The namedCurve OID of an id-ecPublicKey (RFC 5480 §2.1.1), else null.</summary>
    public string? Curve { get; }

    /// <summary>The subjectPublicKey bits: RSAPublicKey DER (RFC 8017 §A.1.1) or an EC point (SEC 1 §2.3.3).</summary>
    public ReadOnlyMemory<byte> PublicKey { get; }

    /// <summary>The keyUsage bits (bit 0 = digitalSignature is the lowest), or null without the extension.</summary>
    public int? KeyUsage { get; }

    /// <summary>keyUsage bit numbers (RFC 5280 §4.2.1.3).</summary>
    public const int KeyEnciphermentBit = 2;

    public const int KeyAgreementBit = 4;

    public bool Allows(int bit) => KeyUsage is not { } usage || (usage & (1 << bit)) != 0;

    public static CertificateAsn Decode(ReadOnlyMemory<byte> der)
    {
        var outer = new AsnReader(der, AsnEncodingRules.BER);
        AsnReader certificate = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        AsnReader tbs = certificate.ReadSequence();
        var explicit0 = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
        if (tbs.PeekTag().HasSameClassAndValue(explicit0))
        {
            _ = tbs.ReadEncodedValue();
        }

        if (!tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
        {
            throw new AsnContentException("serialNumber is not an INTEGER");
        }

        ReadOnlyMemory<byte> serial = tbs.ReadEncodedValue();
        _ = tbs.ReadSequence(); // signature
        ReadOnlyMemory<byte> issuer = ReadName(tbs);
        _ = tbs.ReadSequence(); // validity: the directory stored it and checks it at every expansion
        ReadOnlyMemory<byte> subject = ReadName(tbs);
        ReadOnlyMemory<byte> spki = tbs.ReadEncodedValue();

        var spkiReader = new AsnReader(spki, AsnEncodingRules.BER).ReadSequence();
        AsnReader algorithm = spkiReader.ReadSequence();
        string keyAlgorithm = algorithm.ReadObjectIdentifier();
        string? curve = algorithm.HasData && algorithm.PeekTag().HasSameClassAndValue(Asn1Tag.ObjectIdentifier)
            ? algorithm.ReadObjectIdentifier()
            : null;
        ReadOnlyMemory<byte> publicKey = spkiReader.TryReadPrimitiveBitString(out int unused, out ReadOnlyMemory<byte> bits)
            ? bits
            : spkiReader.ReadBitString(out unused);
        if (unused != 0)
        {
            throw new AsnContentException("subjectPublicKey is not a whole number of octets");
        }

        spkiReader.ThrowIfNotEmpty();

        int? keyUsage = null;
        var explicit3 = new Asn1Tag(TagClass.ContextSpecific, 3, isConstructed: true);
        while (tbs.HasData)
        {
            Asn1Tag tag = tbs.PeekTag();
            if (!tag.HasSameClassAndValue(explicit3))
            {
                _ = tbs.ReadEncodedValue(); // issuerUniqueID, subjectUniqueID
                continue;
            }

            AsnReader extensions = tbs.ReadSequence(explicit3).ReadSequence();
            while (extensions.HasData)
            {
                AsnReader extension = extensions.ReadSequence();
                string id = extension.ReadObjectIdentifier();
                if (extension.PeekTag().HasSameClassAndValue(Asn1Tag.Boolean))
                {
                    _ = extension.ReadBoolean();
                }

                byte[] value = extension.ReadOctetString();
                if (id == KeyUsageOid)
                {
                    keyUsage = ReadKeyUsage(value);
                }
            }
        }

        return new CertificateAsn(serial, issuer, subject, spki, keyAlgorithm, curve, publicKey, keyUsage);
    }

    private static ReadOnlyMemory<byte> ReadName(AsnReader reader)
    {
        if (!reader.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
        {
            throw new AsnContentException("a Name is not a SEQUENCE");
        }

        return reader.ReadEncodedValue();
    }

    // KeyUsage ::= BIT STRING: bit 0 is the first (most significant) bit of the first octet.
    private static int ReadKeyUsage(byte[] value)
    {
        var reader = new AsnReader(value, AsnEncodingRules.BER);
        byte[] bits = reader.ReadBitString(out _);
        reader.ThrowIfNotEmpty();
        int usage = 0;
        for (int bit = 0; bit < Math.Min(bits.Length * 8, 16); bit++)
        {
            if ((bits[bit / 8] & (0x80 >> (bit % 8))) != 0)
            {
                usage |= 1 << bit;
            }
        }

        return usage;
    }
}
