using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §6.2.1
// RecipientIdentifier ::= CHOICE {
//   issuerAndSerialNumber  IssuerAndSerialNumber,
//   subjectKeyIdentifier   [0] SubjectKeyIdentifier }   -- IMPLICIT OCTET STRING
// RFC 5652 §6.2.2 (kari)
// KeyAgreeRecipientIdentifier ::= CHOICE {
//   issuerAndSerialNumber  IssuerAndSerialNumber,
//   rKeyId                 [0] IMPLICIT RecipientKeyIdentifier }
// RecipientKeyIdentifier ::= SEQUENCE {
//   subjectKeyIdentifier  SubjectKeyIdentifier,
//   date                  GeneralizedTime OPTIONAL,
//   other                 OtherKeyAttribute OPTIONAL }
internal readonly struct RecipientIdentifierAsn
{
    private RecipientIdentifierAsn(IssuerAndSerialNumberAsn? iasn, ReadOnlyMemory<byte>? ski)
    {
        IssuerAndSerialNumber = iasn;
        SubjectKeyIdentifier = ski;
    }

    public IssuerAndSerialNumberAsn? IssuerAndSerialNumber { get; }

    public ReadOnlyMemory<byte>? SubjectKeyIdentifier { get; }

    public static RecipientIdentifierAsn Decode(AsnReader reader)
    {
        Asn1Tag tag = reader.PeekTag();
        if (tag.HasSameClassAndValue(Asn1Tag.Sequence))
        {
            return new RecipientIdentifierAsn(IssuerAndSerialNumberAsn.Decode(reader), null);
        }

        if (tag.HasSameClassAndValue(AsnTags.Context0))
        {
            return new RecipientIdentifierAsn(null, reader.ReadOctetString(AsnTags.Context0));
        }

        throw new AsnContentException("unknown RecipientIdentifier choice");
    }

    public static RecipientIdentifierAsn DecodeKeyAgree(AsnReader reader)
    {
        Asn1Tag tag = reader.PeekTag();
        if (tag.HasSameClassAndValue(Asn1Tag.Sequence))
        {
            return new RecipientIdentifierAsn(IssuerAndSerialNumberAsn.Decode(reader), null);
        }

        if (tag.HasSameClassAndValue(AsnTags.Context0))
        {
            AsnReader rkeyId = reader.ReadSequence(AsnTags.Constructed0);
            byte[] ski = rkeyId.ReadOctetString();
            // date and other only narrow down which key; we identify keys by SKI alone.
            while (rkeyId.HasData)
            {
                rkeyId.ReadEncodedValue();
            }

            return new RecipientIdentifierAsn(null, ski);
        }

        throw new AsnContentException("unknown KeyAgreeRecipientIdentifier choice");
    }

    public bool Matches(X509Certificate2 certificate, ReadOnlySpan<byte> certificateSki, ReadOnlySpan<byte> publicKeySha1)
    {
        if (IssuerAndSerialNumber is { } iasn)
        {
            return iasn.Matches(certificate);
        }

        ReadOnlySpan<byte> ski = SubjectKeyIdentifier!.Value.Span;
        // RFC 5280 §4.2.1.2 method (1) as a fallback for certificates without the extension.
        return (!certificateSki.IsEmpty && ski.SequenceEqual(certificateSki)) || ski.SequenceEqual(publicKeySha1);
    }

    /// <summary>The SKI extension value of a certificate, or empty.</summary>
    public static byte[] GetSubjectKeyIdentifier(X509Certificate2 certificate)
    {
        foreach (X509Extension ext in certificate.Extensions)
        {
            if (ext is X509SubjectKeyIdentifierExtension skiExt)
            {
                return skiExt.SubjectKeyIdentifierBytes.ToArray();
            }
        }

        return [];
    }

    /// <summary>SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 §4.2.1.2 method 1).</summary>
#pragma warning disable CA5350 // SHA-1 is what RFC 5280 §4.2.1.2 specifies for key identifiers; not a security use.
    public static byte[] GetPublicKeySha1(X509Certificate2 certificate) =>
        SHA1.HashData(certificate.PublicKey.EncodedKeyValue.RawData);
#pragma warning restore CA5350
}
