using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §6.1
// OriginatorInfo ::= SEQUENCE {
//   certs  [0] IMPLICIT CertificateSet OPTIONAL,
//   crls   [1] IMPLICIT RevocationInfoChoices OPTIONAL }
// CertificateChoices ::= CHOICE { certificate Certificate, extendedCertificate [0], v1AttrCert [1],
//                                 v2AttrCert [2], other [3] }
// RevocationInfoChoice ::= CHOICE { crl CertificateList, other [1] IMPLICIT OtherRevocationInfoFormat }
// Only the facts needed for the version rule (RFC 5652 §6.1) are extracted; the bytes are kept verbatim.
internal readonly struct OriginatorInfoAsn
{
    private OriginatorInfoAsn(bool hasOtherCertificates, bool hasOtherRevocationInfo, bool hasV2AttributeCertificates)
    {
        HasOtherCertificates = hasOtherCertificates;
        HasOtherRevocationInfo = hasOtherRevocationInfo;
        HasV2AttributeCertificates = hasV2AttributeCertificates;
    }

    public bool HasOtherCertificates { get; }

    public bool HasOtherRevocationInfo { get; }

    public bool HasV2AttributeCertificates { get; }

    public static OriginatorInfoAsn Decode(ReadOnlyMemory<byte> encoded)
    {
        var outer = new AsnReader(encoded, AsnEncodingRules.BER);
        AsnReader seq = outer.ReadSequence(AsnTags.Constructed0);
        outer.ThrowIfNotEmpty();
        bool other = false, otherRev = false, v2 = false;
        if (seq.HasData && seq.PeekTag().HasSameClassAndValue(AsnTags.Context0))
        {
            AsnReader certs = seq.ReadSetOf(skipSortOrderValidation: true, AsnTags.Constructed0);
            while (certs.HasData)
            {
                Asn1Tag t = certs.PeekTag();
                other |= t.TagClass == TagClass.ContextSpecific && t.TagValue == 3;
                v2 |= t.TagClass == TagClass.ContextSpecific && t.TagValue == 2;
                certs.ReadEncodedValue();
            }
        }

        if (seq.HasData && seq.PeekTag().HasSameClassAndValue(AsnTags.Context1))
        {
            AsnReader crls = seq.ReadSetOf(skipSortOrderValidation: true, AsnTags.Constructed1);
            while (crls.HasData)
            {
                Asn1Tag t = crls.PeekTag();
                otherRev |= t.TagClass == TagClass.ContextSpecific && t.TagValue == 1;
                crls.ReadEncodedValue();
            }
        }

        seq.ThrowIfNotEmpty();
        return new OriginatorInfoAsn(other, otherRev, v2);
    }
}
