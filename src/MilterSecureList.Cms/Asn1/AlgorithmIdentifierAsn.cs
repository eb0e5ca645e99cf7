using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5280 §4.1.1.2
// AlgorithmIdentifier ::= SEQUENCE {
//   algorithm   OBJECT IDENTIFIER,
//   parameters  ANY DEFINED BY algorithm OPTIONAL }
internal readonly struct AlgorithmIdentifierAsn
{
    public AlgorithmIdentifierAsn(string algorithm, ReadOnlyMemory<byte>? parameters, ReadOnlyMemory<byte> encoded)
    {
        Algorithm = algorithm;
        Parameters = parameters;
        Encoded = encoded;
    }

    public string Algorithm { get; }

    /// <summary>The encoded parameters TLV, or null when absent.</summary>
    public ReadOnlyMemory<byte>? Parameters { get; }

    /// <summary>The exact input bytes of the whole AlgorithmIdentifier (needed verbatim for the ECDH SharedInfo).</summary>
    public ReadOnlyMemory<byte> Encoded { get; }

    /// <summary>Parameters absent or an ASN.1 NULL (both encodings are seen in the wild; docs/cms.md §6).</summary>
    public bool HasNullOrAbsentParameters =>
        Parameters is null || Parameters.Value.Span.SequenceEqual(s_null);

    private static readonly byte[] s_null = [0x05, 0x00];

    public static AlgorithmIdentifierAsn Decode(AsnReader reader)
    {
        ReadOnlyMemory<byte> encoded = reader.PeekEncodedValue();
        AsnReader seq = reader.ReadSequence();
        string oid = seq.ReadObjectIdentifier();
        ReadOnlyMemory<byte>? parameters = null;
        if (seq.HasData)
        {
            parameters = seq.ReadEncodedValue();
        }

        seq.ThrowIfNotEmpty();
        return new AlgorithmIdentifierAsn(oid, parameters, encoded);
    }

    /// <summary>An AlgorithmIdentifier that is the whole of <paramref name="encoded"/> (nothing after it).</summary>
    public static AlgorithmIdentifierAsn DecodeWhole(ReadOnlyMemory<byte> encoded)
    {
        var reader = new AsnReader(encoded, AsnEncodingRules.BER);
        AlgorithmIdentifierAsn alg = Decode(reader);
        reader.ThrowIfNotEmpty();
        return alg;
    }

    public static void Encode(AsnWriter writer, string oid, bool writeNull = false)
    {
        using (writer.PushSequence())
        {
            writer.WriteObjectIdentifier(oid);
            if (writeNull)
            {
                writer.WriteNull();
            }
        }
    }
}
