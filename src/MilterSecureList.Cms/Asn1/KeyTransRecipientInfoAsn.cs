using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §6.2.1
// KeyTransRecipientInfo ::= SEQUENCE {
//   version                 CMSVersion,          -- always set to 0 or 2
//   rid                     RecipientIdentifier,
//   keyEncryptionAlgorithm  KeyEncryptionAlgorithmIdentifier,
//   encryptedKey            EncryptedKey }       -- OCTET STRING
internal readonly struct KeyTransRecipientInfoAsn
{
    private KeyTransRecipientInfoAsn(int version, RecipientIdentifierAsn rid, AlgorithmIdentifierAsn alg, ReadOnlyMemory<byte> encryptedKey)
    {
        Version = version;
        Rid = rid;
        KeyEncryptionAlgorithm = alg;
        EncryptedKey = encryptedKey;
    }

    public int Version { get; }

    public RecipientIdentifierAsn Rid { get; }

    public AlgorithmIdentifierAsn KeyEncryptionAlgorithm { get; }

    public ReadOnlyMemory<byte> EncryptedKey { get; }

    public static KeyTransRecipientInfoAsn Decode(AsnReader reader)
    {
        AsnReader seq = reader.ReadSequence();
        if (!seq.TryReadInt32(out int version))
        {
            throw new AsnContentException("KeyTransRecipientInfo version out of range");
        }

        RecipientIdentifierAsn rid = RecipientIdentifierAsn.Decode(seq);
        AlgorithmIdentifierAsn alg = AlgorithmIdentifierAsn.Decode(seq);
        byte[] ek = seq.ReadOctetString();
        seq.ThrowIfNotEmpty();
        return new KeyTransRecipientInfoAsn(version, rid, alg, ek);
    }
}
