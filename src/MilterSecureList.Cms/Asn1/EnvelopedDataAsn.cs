using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §6.1
// EnvelopedData ::= SEQUENCE {
//   version               CMSVersion,
//   originatorInfo        [0] IMPLICIT OriginatorInfo OPTIONAL,
//   recipientInfos        RecipientInfos,                 -- SET SIZE (1..MAX) OF RecipientInfo
//   encryptedContentInfo  EncryptedContentInfo,
//   unprotectedAttrs      [1] IMPLICIT UnprotectedAttributes OPTIONAL }
// RFC 5083 §2.1
// AuthEnvelopedData ::= SEQUENCE {
//   version                   CMSVersion,                -- always 0
//   originatorInfo            [0] IMPLICIT OriginatorInfo OPTIONAL,
//   recipientInfos            RecipientInfos,
//   authEncryptedContentInfo  EncryptedContentInfo,
//   authAttrs                 [1] IMPLICIT AuthAttributes OPTIONAL,
//   mac                       MessageAuthenticationCode,  -- OCTET STRING
//   unauthAttrs               [2] IMPLICIT UnauthAttributes OPTIONAL }
// Both share one struct: everything after the EncryptedContentInfo is the "trailer", kept as input bytes.
internal sealed class EnvelopedDataAsn
{
    public required bool IsAuthEnveloped { get; init; }

    public required int Version { get; init; }

    /// <summary>Exact input bytes of [0] originatorInfo, or null.</summary>
    public ReadOnlyMemory<byte>? OriginatorInfo { get; init; }

    public required List<RecipientInfoAsn> RecipientInfos { get; init; }

    public required EncryptedContentInfoAsn EncryptedContentInfo { get; init; }

    /// <summary>unprotectedAttrs (EnvelopedData) or authAttrs, mac, unauthAttrs (AuthEnvelopedData): exact input bytes.</summary>
    public required List<ReadOnlyMemory<byte>> Trailer { get; init; }

    public bool HasUnprotectedAttributes => !IsAuthEnveloped && Trailer.Count > 0;

    /// <summary>The authAttrs ([1]) for AuthEnvelopedData, or null.</summary>
    public ReadOnlyMemory<byte>? AuthAttributes { get; init; }

    /// <summary>The GCM tag (mac contents) for AuthEnvelopedData.</summary>
    public ReadOnlyMemory<byte> Mac { get; init; }

    public static EnvelopedDataAsn Decode(ReadOnlyMemory<byte> encoded, bool isAuthEnveloped, int maxRecipientInfos)
    {
        var outer = new AsnReader(encoded, AsnEncodingRules.BER);
        AsnReader seq = outer.ReadSequence();
        outer.ThrowIfNotEmpty();

        if (!seq.TryReadInt32(out int version) || version < 0 || version > 4)
        {
            throw new AsnContentException("version is not a CMSVersion");
        }

        ReadOnlyMemory<byte>? originatorInfo = null;
        if (seq.PeekTag().HasSameClassAndValue(AsnTags.Context0))
        {
            originatorInfo = seq.ReadEncodedValue();
        }

        // BER: senders do not always sort the SET OF; we do not care about its order.
        AsnReader set = seq.ReadSetOf(skipSortOrderValidation: true);
        var ris = new List<RecipientInfoAsn>();
        while (set.HasData)
        {
            if (ris.Count >= maxRecipientInfos)
            {
                throw new CmsRewrapException(CmsRewrapFailure.LimitExceeded, $"more than {maxRecipientInfos} RecipientInfos");
            }

            ris.Add(RecipientInfoAsn.Decode(set));
        }

        if (ris.Count == 0)
        {
            throw new AsnContentException("recipientInfos is empty");
        }

        EncryptedContentInfoAsn eci = EncryptedContentInfoAsn.Decode(seq);
        var trailer = new List<ReadOnlyMemory<byte>>();
        ReadOnlyMemory<byte>? authAttrs = null;
        ReadOnlyMemory<byte> mac = default;
        if (!isAuthEnveloped)
        {
            if (seq.HasData)
            {
                if (!seq.PeekTag().HasSameClassAndValue(AsnTags.Context1))
                {
                    throw new AsnContentException("unexpected element after encryptedContentInfo");
                }

                trailer.Add(seq.ReadEncodedValue());
            }
        }
        else
        {
            if (seq.HasData && seq.PeekTag().HasSameClassAndValue(AsnTags.Context1))
            {
                authAttrs = seq.ReadEncodedValue();
                trailer.Add(authAttrs.Value);
            }

            ReadOnlyMemory<byte> macTlv = seq.PeekEncodedValue();
            mac = seq.ReadOctetString();
            trailer.Add(macTlv);
            if (seq.HasData)
            {
                if (!seq.PeekTag().HasSameClassAndValue(AsnTags.Context2))
                {
                    throw new AsnContentException("unexpected element after mac");
                }

                trailer.Add(seq.ReadEncodedValue());
            }
        }

        seq.ThrowIfNotEmpty();
        return new EnvelopedDataAsn
        {
            IsAuthEnveloped = isAuthEnveloped,
            Version = version,
            OriginatorInfo = originatorInfo,
            RecipientInfos = ris,
            EncryptedContentInfo = eci,
            Trailer = trailer,
            AuthAttributes = authAttrs,
            Mac = mac,
        };
    }

    /// <summary>RFC 5652 §6.1 version rule, evaluated for the RecipientInfos we are about to write.</summary>
    public static int ComputeEnvelopedDataVersion(OriginatorInfoAsn? originator, bool hasUnprotectedAttributes,
        bool anyPwriOrOri, bool allRecipientInfosVersion0)
    {
        if (originator is { } o && (o.HasOtherCertificates || o.HasOtherRevocationInfo))
        {
            return 4;
        }

        if ((originator is { } o2 && o2.HasV2AttributeCertificates) || anyPwriOrOri)
        {
            return 3;
        }

        if (originator is null && !hasUnprotectedAttributes && allRecipientInfosVersion0)
        {
            return 0;
        }

        return 2;
    }
}
