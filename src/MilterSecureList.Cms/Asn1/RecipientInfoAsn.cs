using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §6.2
// RecipientInfo ::= CHOICE {
//   ktri   KeyTransRecipientInfo,
//   kari   [1] KeyAgreeRecipientInfo,
//   kekri  [2] KEKRecipientInfo,
//   pwri   [3] PasswordRecipientinfo,
//   ori    [4] OtherRecipientInfo }
// OtherRecipientInfo ::= SEQUENCE { oriType OBJECT IDENTIFIER, oriValue ANY DEFINED BY oriType }
internal readonly struct RecipientInfoAsn
{
    private RecipientInfoAsn(RecipientInfoKind kind, int version, ReadOnlyMemory<byte> encoded,
        KeyTransRecipientInfoAsn? ktri, KeyAgreeRecipientInfoAsn? kari, string? oriType, ReadOnlyMemory<byte> oriValue)
    {
        Kind = kind;
        Version = version;
        Encoded = encoded;
        KeyTrans = ktri;
        KeyAgree = kari;
        OriType = oriType;
        OriValue = oriValue;
    }

    public RecipientInfoKind Kind { get; }

    /// <summary>The RecipientInfo's own version (ori has none: -1).</summary>
    public int Version { get; }

    /// <summary>Exact input bytes; RecipientInfos we keep are copied from here (docs/cms.md §1).</summary>
    public ReadOnlyMemory<byte> Encoded { get; }

    public KeyTransRecipientInfoAsn? KeyTrans { get; }

    public KeyAgreeRecipientInfoAsn? KeyAgree { get; }

    public string? OriType { get; }

    public ReadOnlyMemory<byte> OriValue { get; }

    public static RecipientInfoAsn Decode(AsnReader reader)
    {
        ReadOnlyMemory<byte> encoded = reader.PeekEncodedValue();
        Asn1Tag tag = reader.PeekTag();
        if (tag.HasSameClassAndValue(Asn1Tag.Sequence))
        {
            var ktri = KeyTransRecipientInfoAsn.Decode(reader);
            return new RecipientInfoAsn(RecipientInfoKind.KeyTransport, ktri.Version, encoded, ktri, null, null, default);
        }

        if (tag.HasSameClassAndValue(AsnTags.Context1))
        {
            var kari = KeyAgreeRecipientInfoAsn.Decode(reader);
            return new RecipientInfoAsn(RecipientInfoKind.KeyAgreement, kari.Version, encoded, null, kari, null, default);
        }

        if (tag.HasSameClassAndValue(AsnTags.Context2) || tag.HasSameClassAndValue(AsnTags.Context3))
        {
            AsnReader seq = reader.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, tag.TagValue, true));
            if (!seq.TryReadInt32(out int version))
            {
                throw new AsnContentException("RecipientInfo version out of range");
            }

            return new RecipientInfoAsn(tag.TagValue == 2 ? RecipientInfoKind.Kek : RecipientInfoKind.Password,
                version, encoded, null, null, null, default);
        }

        if (tag.HasSameClassAndValue(AsnTags.Context4))
        {
            AsnReader seq = reader.ReadSequence(AsnTags.Constructed4);
            string oriType = seq.ReadObjectIdentifier();
            ReadOnlyMemory<byte> value = seq.ReadEncodedValue();
            seq.ThrowIfNotEmpty();
            return new RecipientInfoAsn(RecipientInfoKind.Other, -1, encoded, null, null, oriType, value);
        }

        throw new AsnContentException("unknown RecipientInfo choice");
    }
}
