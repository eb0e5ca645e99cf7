using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §6.1
// EncryptedContentInfo ::= SEQUENCE {
//   contentType                 ContentType,
//   contentEncryptionAlgorithm  ContentEncryptionAlgorithmIdentifier,
//   encryptedContent            [0] IMPLICIT EncryptedContent OPTIONAL }   -- OCTET STRING, BER may chunk it
internal readonly struct EncryptedContentInfoAsn
{
    private EncryptedContentInfoAsn(string contentType, AlgorithmIdentifierAsn alg, ReadOnlyMemory<byte> encoded, ReadOnlyMemory<byte>? content)
    {
        ContentType = contentType;
        ContentEncryptionAlgorithm = alg;
        Encoded = encoded;
        EncryptedContentEncoded = content;
    }

    public string ContentType { get; }

    public AlgorithmIdentifierAsn ContentEncryptionAlgorithm { get; }

    /// <summary>Exact input bytes: copied unchanged into the re-wrapped message.</summary>
    public ReadOnlyMemory<byte> Encoded { get; }

    /// <summary>The [0] encryptedContent TLV as in the input (primitive or constructed), or null (detached).</summary>
    public ReadOnlyMemory<byte>? EncryptedContentEncoded { get; }

    public static EncryptedContentInfoAsn Decode(AsnReader reader)
    {
        ReadOnlyMemory<byte> encoded = reader.PeekEncodedValue();
        AsnReader seq = reader.ReadSequence();
        string ct = seq.ReadObjectIdentifier();
        AlgorithmIdentifierAsn alg = AlgorithmIdentifierAsn.Decode(seq);
        ReadOnlyMemory<byte>? content = null;
        if (seq.HasData)
        {
            if (!seq.PeekTag().HasSameClassAndValue(AsnTags.Context0))
            {
                throw new AsnContentException("encryptedContent has the wrong tag");
            }

            content = seq.ReadEncodedValue();
        }

        seq.ThrowIfNotEmpty();
        return new EncryptedContentInfoAsn(ct, alg, encoded, content);
    }

    /// <summary>Concatenate the encrypted content octets (primitive or BER-chunked) for the member-side decryptor.</summary>
    public byte[] ReadEncryptedContent()
    {
        if (EncryptedContentEncoded is not { } tlv)
        {
            throw new AsnContentException("detached encrypted content is not supported");
        }

        var reader = new AsnReader(tlv, AsnEncodingRules.BER);
        byte[] value = reader.ReadOctetString(AsnTags.Context0);
        reader.ThrowIfNotEmpty();
        return value;
    }
}
