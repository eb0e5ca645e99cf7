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
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, "double-wrap RecipientInfo version is not 0");
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
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"double-wrap inner wrap {inner.Algorithm} is not id-aes256-wrap-pad");
        }

        RecipientInfoAsn outer = RecipientInfoAsn.Decode(seq);
        if (outer.Kind is not (RecipientInfoKind.KeyTransport or RecipientInfoKind.KeyAgreement))
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, "double-wrap outer RecipientInfo is not ktri or kari");
        }

        seq.ThrowIfNotEmpty();
        return new DoubleWrapRecipientInfoAsn(idEncoded, list, epoch, inner, outer);
    }

    // OtherRecipientInfo ::= SEQUENCE { oriType, oriValue }  as RecipientInfo alternative [4] IMPLICIT:
    //   A4 L { 06 oriType | 30 L { 02 01 00 | listKeyId | 30 0B 06 09 <id-aes256-wrap-pad> | outer RecipientInfo } }
    // Written by hand: this runs once per member per message (target: ≤ 1.1x the re-key cost per member, bench/double).
    private static readonly byte[] s_oriTypeTlv = EncodeOid(Oids.DoubleWrapOri);
    private static readonly byte[] s_innerWrapAlgorithm = Convert.FromHexString("300B0609608648016503040130");

    public static byte[] EncodeOri(ReadOnlySpan<byte> listKeyIdEncoded, byte[] outerRecipientInfo)
    {
        int header = OriHeaderLength(listKeyIdEncoded.Length, outerRecipientInfo.Length);
        byte[] ori = new byte[header + outerRecipientInfo.Length];
        WriteOriHeader(ori, listKeyIdEncoded, outerRecipientInfo.Length);
        outerRecipientInfo.CopyTo(ori, header);
        return ori;
    }

    /// <summary>The bytes of the OtherRecipientInfo before its outer RecipientInfo of <paramref name="outerLength"/> bytes.</summary>
    public static int OriHeaderLength(int listKeyIdLength, int outerLength)
    {
        long valueContent = 3 + listKeyIdLength + s_innerWrapAlgorithm.Length + outerLength;
        long oriContent = s_oriTypeTlv.Length + DerHeader.TlvSize(valueContent);
        return (int)(DerHeader.TlvSize(oriContent) - outerLength);
    }

    /// <summary>Writes the OtherRecipientInfo up to its outer RecipientInfo (<see cref="OriHeaderLength"/> bytes); the
    /// outer RecipientInfo follows it. The engine writes it this way straight into the output, once per member.</summary>
    public static void WriteOriHeader(Span<byte> destination, ReadOnlySpan<byte> listKeyIdEncoded, int outerLength)
    {
        long valueContent = 3 + listKeyIdEncoded.Length + s_innerWrapAlgorithm.Length + outerLength;
        long oriContent = s_oriTypeTlv.Length + DerHeader.TlvSize(valueContent);
        int p = DerHeader.Write(destination, 0xA4, oriContent);
        s_oriTypeTlv.CopyTo(destination[p..]);
        p += s_oriTypeTlv.Length;
        p += DerHeader.Write(destination[p..], 0x30, valueContent);
        destination[p++] = 0x02;
        destination[p++] = 0x01;
        destination[p++] = 0x00;
        listKeyIdEncoded.CopyTo(destination[p..]);
        p += listKeyIdEncoded.Length;
        s_innerWrapAlgorithm.CopyTo(destination[p..]);
        p += s_innerWrapAlgorithm.Length;
        if (p != OriHeaderLength(listKeyIdEncoded.Length, outerLength))
        {
            throw new InvalidOperationException("internal error: ori size");
        }
    }

    private static byte[] EncodeOid(string oid)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        w.WriteObjectIdentifier(oid);
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
