using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §3
// ContentInfo ::= SEQUENCE {
//   contentType  ContentType,                         -- OBJECT IDENTIFIER
//   content      [0] EXPLICIT ANY DEFINED BY contentType }
internal readonly struct ContentInfoAsn
{
    private ContentInfoAsn(string contentType, ReadOnlyMemory<byte> content)
    {
        ContentType = contentType;
        Content = content;
    }

    public string ContentType { get; }

    /// <summary>The encoded inner value (inside the [0] EXPLICIT wrapper), exact input bytes.</summary>
    public ReadOnlyMemory<byte> Content { get; }

    public static ContentInfoAsn Decode(ReadOnlyMemory<byte> encoded)
    {
        // BER: streaming encoders (openssl -stream, gpgsm, NSS) use indefinite lengths; BER also accepts DER.
        var outer = new AsnReader(encoded, AsnEncodingRules.BER);
        AsnReader seq = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        string ct = seq.ReadObjectIdentifier();
        AsnReader explicit0 = seq.ReadSequence(AsnTags.Constructed0);
        ReadOnlyMemory<byte> content = explicit0.ReadEncodedValue();
        explicit0.ThrowIfNotEmpty();
        seq.ThrowIfNotEmpty();
        return new ContentInfoAsn(ct, content);
    }
}
