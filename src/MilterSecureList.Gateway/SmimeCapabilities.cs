using System.Formats.Asn1;

namespace MilterSecureList.Gateway;

/// <summary>
/// The SMIMECapabilities signed attribute (RFC 8551 §2.5.2): what a sender can decrypt, in order of preference.
/// <code>
/// SMIMECapabilities ::= SEQUENCE OF SMIMECapability
/// SMIMECapability ::= SEQUENCE { capabilityID OBJECT IDENTIFIER, parameters ANY DEFINED BY capabilityID OPTIONAL }
/// </code>
/// </summary>
public sealed class SmimeCapabilities
{
    public const string AttributeOid = "1.2.840.113549.1.9.15";
    public const string Aes256Gcm = "2.16.840.1.101.3.4.1.46";
    public const string Aes256Cbc = "2.16.840.1.101.3.4.1.42";
    public const string Aes128Cbc = "2.16.840.1.101.3.4.1.2";
    public const string RsaesOaep = "1.2.840.113549.1.1.7";
    public const string RsaEncryption = "1.2.840.113549.1.1.1";

    private SmimeCapabilities(IReadOnlyList<string> algorithms)
    {
        Algorithms = algorithms;
    }

    /// <summary>capabilityIDs in the sender's order of preference.</summary>
    public IReadOnlyList<string> Algorithms { get; }

    public bool Supports(string oid) => Algorithms.Contains(oid, StringComparer.Ordinal);

    /// <summary>What the gateway itself can decrypt, announced in every signature it makes.</summary>
    public static byte[] Ours { get; } = Encode([Aes256Gcm, Aes256Cbc, Aes128Cbc, RsaesOaep, RsaEncryption]);

    public static byte[] Encode(IEnumerable<string> algorithms)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (string oid in algorithms)
            {
                using (writer.PushSequence())
                {
                    writer.WriteObjectIdentifier(oid);
                }
            }
        }

        return writer.Encode();
    }

    /// <summary>Parses the attribute value; null when it is malformed (a bad attribute only costs the preference).</summary>
    public static SmimeCapabilities? TryDecode(ReadOnlyMemory<byte> der)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.BER);
            AsnReader sequence = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            var algorithms = new List<string>();
            while (sequence.HasData && algorithms.Count < 64)
            {
                AsnReader capability = sequence.ReadSequence();
                algorithms.Add(capability.ReadObjectIdentifier());
            }

            return new SmimeCapabilities(algorithms);
        }
        catch (AsnContentException)
        {
            return null;
        }
    }
}
