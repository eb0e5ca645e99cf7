using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// docs/double-wrap.md §2 (oriType = Oids.DoubleWrapOri)
// DoubleWrapRecipientInfo ::= SEQUENCE {
//   version     INTEGER (0),
//   listKeyId   ListKeyIdentifier,
//   innerWrap   AlgorithmIdentifier,   -- id-aes256-wrap-pad (RFC 5649), parameters absent
//   outer       RecipientInfo }        -- ktri or kari; its wrapped "key" is the inner blob
// ListKeyIdentifier ::= SEQUENCE {
//   list   UTF8String,                 -- the list address
//   epoch  INTEGER (0..MAX) }
internal readonly struct DoubleWrapRecipientInfoAsn
{
    private DoubleWrapRecipientInfoAsn(ReadOnlyMemory<byte> listKeyIdEncoded, string listId, long epoch,
        AlgorithmIdentifierAsn innerWrap, RecipientInfoAsn outer)
    {
        ListKeyIdEncoded = listKeyIdEncoded;
        ListId = listId;
        Epoch = epoch;
        InnerWrap = innerWrap;
        Outer = outer;
    }

    /// <summary>Exact input bytes of ListKeyIdentifier (the server copies it unchanged per member).</summary>
    public ReadOnlyMemory<byte> ListKeyIdEncoded { get; }

    public string ListId { get; }

    public long Epoch { get; }

    public AlgorithmIdentifierAsn InnerWrap { get; }

    public RecipientInfoAsn Outer { get; }

    public static DoubleWrapRecipientInfoAsn Decode(ReadOnlyMemory<byte> oriValue)
    {
        var outerReader = new AsnReader(oriValue, AsnEncodingRules.BER);
        AsnReader seq = outerReader.ReadSequence();
        outerReader.ThrowIfNotEmpty();
        if (!seq.TryReadInt32(out int version) || version != 0)
        {
            throw new UnsupportedCmsException("double-wrap RecipientInfo version is not 0");
        }

        ReadOnlyMemory<byte> idEncoded = seq.PeekEncodedValue();
        AsnReader id = seq.ReadSequence();
        string list = id.ReadCharacterString(UniversalTagNumber.UTF8String);
        if (!id.TryReadInt64(out long epoch) || epoch < 0)
        {
            throw new AsnContentException("list key epoch is not a non-negative 64-bit integer");
        }

        id.ThrowIfNotEmpty();
        AlgorithmIdentifierAsn inner = AlgorithmIdentifierAsn.Decode(seq);
        if (inner.Algorithm != Oids.Aes256WrapPad || inner.Parameters is not null)
        {
            throw new UnsupportedCmsException($"double-wrap inner wrap {inner.Algorithm} is not id-aes256-wrap-pad");
        }

        RecipientInfoAsn outer = RecipientInfoAsn.Decode(seq);
        if (outer.Kind is not (RecipientInfoKind.KeyTransport or RecipientInfoKind.KeyAgreement))
        {
            throw new UnsupportedCmsException("double-wrap outer RecipientInfo is not ktri or kari");
        }

        seq.ThrowIfNotEmpty();
        return new DoubleWrapRecipientInfoAsn(idEncoded, list, epoch, inner, outer);
    }

    // OtherRecipientInfo ::= SEQUENCE { oriType, oriValue }  as RecipientInfo alternative [4] IMPLICIT.
    public static byte[] EncodeOri(ReadOnlySpan<byte> listKeyIdEncoded, byte[] outerRecipientInfo)
    {
        var w = new AsnWriter(AsnEncodingRules.DER, 96 + listKeyIdEncoded.Length + outerRecipientInfo.Length);
        using (w.PushSequence(AsnTags.Constructed4))
        {
            w.WriteObjectIdentifier(Oids.DoubleWrapOri);
            using (w.PushSequence())
            {
                w.WriteInteger(0);
                w.WriteEncodedValue(listKeyIdEncoded);
                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(Oids.Aes256WrapPad);
                }

                w.WriteEncodedValue(outerRecipientInfo);
            }
        }

        return w.Encode();
    }

    public static byte[] EncodeListKeyId(string listId, long epoch)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteCharacterString(UniversalTagNumber.UTF8String, listId);
            w.WriteInteger(epoch);
        }

        return w.Encode();
    }
}
