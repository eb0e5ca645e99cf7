using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 5652 §6.2.2
// KeyAgreeRecipientInfo ::= SEQUENCE {
//   version                 CMSVersion,  -- always set to 3
//   originator              [0] EXPLICIT OriginatorIdentifierOrKey,
//   ukm                     [1] EXPLICIT UserKeyingMaterial OPTIONAL,
//   keyEncryptionAlgorithm  KeyEncryptionAlgorithmIdentifier,
//   recipientEncryptedKeys  RecipientEncryptedKeys }
// OriginatorIdentifierOrKey ::= CHOICE {
//   issuerAndSerialNumber  IssuerAndSerialNumber,
//   subjectKeyIdentifier   [0] SubjectKeyIdentifier,
//   originatorKey          [1] OriginatorPublicKey }
// OriginatorPublicKey ::= SEQUENCE { algorithm AlgorithmIdentifier, publicKey BIT STRING }
// RecipientEncryptedKeys ::= SEQUENCE OF RecipientEncryptedKey
// RecipientEncryptedKey ::= SEQUENCE { rid KeyAgreeRecipientIdentifier, encryptedKey EncryptedKey }
internal readonly struct KeyAgreeRecipientInfoAsn
{
    private KeyAgreeRecipientInfoAsn(
        int version,
        ReadOnlyMemory<byte>? originatorPublicKey,
        ReadOnlyMemory<byte>? ukm,
        AlgorithmIdentifierAsn keyEncryptionAlgorithm,
        List<(RecipientIdentifierAsn Rid, ReadOnlyMemory<byte> EncryptedKey)> keys)
    {
        Version = version;
        OriginatorPublicKey = originatorPublicKey;
        Ukm = ukm;
        KeyEncryptionAlgorithm = keyEncryptionAlgorithm;
        RecipientEncryptedKeys = keys;
    }

    public int Version { get; }

    /// <summary>The originator's ephemeral public point (BIT STRING contents), or null when the originator is
    /// named by a certificate (static-static ECDH, which we do not support).</summary>
    public ReadOnlyMemory<byte>? OriginatorPublicKey { get; }

    public ReadOnlyMemory<byte>? Ukm { get; }

    public AlgorithmIdentifierAsn KeyEncryptionAlgorithm { get; }

    public IReadOnlyList<(RecipientIdentifierAsn Rid, ReadOnlyMemory<byte> EncryptedKey)> RecipientEncryptedKeys { get; }

    public static KeyAgreeRecipientInfoAsn Decode(AsnReader reader)
    {
        AsnReader seq = reader.ReadSequence(AsnTags.Constructed1);
        if (!seq.TryReadInt32(out int version))
        {
            throw new AsnContentException("KeyAgreeRecipientInfo version out of range");
        }

        AsnReader originator = seq.ReadSequence(AsnTags.Constructed0);
        ReadOnlyMemory<byte>? point = null;
        Asn1Tag otag = originator.PeekTag();
        if (otag.HasSameClassAndValue(AsnTags.Context1))
        {
            AsnReader opk = originator.ReadSequence(AsnTags.Constructed1);
            AlgorithmIdentifierAsn alg = AlgorithmIdentifierAsn.Decode(opk);
            if (alg.Algorithm != Oids.EcPublicKey)
            {
                throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"originator key algorithm {alg.Algorithm} is not id-ecPublicKey");
            }

            point = opk.ReadBitString(out int unused);
            if (unused != 0)
            {
                throw new AsnContentException("originator public key has unused bits");
            }

            opk.ThrowIfNotEmpty();
        }
        else
        {
            originator.ReadEncodedValue();
        }

        originator.ThrowIfNotEmpty();

        ReadOnlyMemory<byte>? ukm = null;
        if (seq.PeekTag().HasSameClassAndValue(AsnTags.Context1))
        {
            AsnReader ukmReader = seq.ReadSequence(AsnTags.Constructed1);
            ukm = ukmReader.ReadOctetString();
            ukmReader.ThrowIfNotEmpty();
        }

        AlgorithmIdentifierAsn kea = AlgorithmIdentifierAsn.Decode(seq);
        AsnReader reks = seq.ReadSequence();
        var keys = new List<(RecipientIdentifierAsn, ReadOnlyMemory<byte>)>();
        while (reks.HasData)
        {
            AsnReader rek = reks.ReadSequence();
            RecipientIdentifierAsn rid = RecipientIdentifierAsn.DecodeKeyAgree(rek);
            byte[] ek = rek.ReadOctetString();
            rek.ThrowIfNotEmpty();
            keys.Add((rid, ek));
        }

        seq.ThrowIfNotEmpty();
        return new KeyAgreeRecipientInfoAsn(version, point, ukm, kea, keys);
    }
}
