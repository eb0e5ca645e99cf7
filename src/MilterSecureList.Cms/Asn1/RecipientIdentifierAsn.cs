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

    public bool Matches(X509Certificate2 certificate, ReadOnlySpan<byte> certificateSki, ReadOnlySpan<byte> publicKeySha1,
        ReadOnlySpan<byte> publicKeyInfoSha1)
    {
        if (IssuerAndSerialNumber is { } iasn)
        {
            return iasn.Matches(certificate);
        }

        // Senders that find no SKI extension compute one: RFC 5280 §4.2.1.2 method (1), or, as Windows (CryptoAPI)
        // and .NET do, SHA-1 over the whole DER SubjectPublicKeyInfo. All three name the same key.
        ReadOnlySpan<byte> ski = SubjectKeyIdentifier!.Value.Span;
        return (!certificateSki.IsEmpty && ski.SequenceEqual(certificateSki)) || ski.SequenceEqual(publicKeySha1)
            || ski.SequenceEqual(publicKeyInfoSha1);
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

    /// <summary>SHA-1 of the whole DER SubjectPublicKeyInfo (algorithm included): the key identifier Windows and .NET
    /// write for a certificate without the SKI extension (X509SubjectKeyIdentifierHashAlgorithm.CapiSha1).</summary>
    public static byte[] GetPublicKeyInfoSha1(X509Certificate2 certificate) =>
        SHA1.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo());
#pragma warning restore CA5350
}
