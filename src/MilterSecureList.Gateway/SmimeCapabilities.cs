using System.Formats.Asn1;
using System.Security.Cryptography;

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

    /// <summary>dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753 §7.1.4): ephemeral-static ECDH, the X9.63 KDF with SHA-256.</summary>
    public const string EcdhStdSha256Kdf = "1.3.132.1.11.1";

    /// <summary>id-aes256-wrap (RFC 3394), the key-wrap parameter of the ECDH capability.</summary>
    public const string Aes256Wrap = "2.16.840.1.101.3.4.1.45";

    private SmimeCapabilities(IReadOnlyList<string> algorithms)
    {
        Algorithms = algorithms;
    }

    /// <summary>capabilityIDs in the sender's order of preference.</summary>
    public IReadOnlyList<string> Algorithms { get; }

    public bool Supports(string oid) => Algorithms.Contains(oid, StringComparer.Ordinal);

    /// <summary>What the gateway can decrypt for an RSA user, announced in every signature it makes for one.</summary>
    public static byte[] Ours { get; } = Encode([Aes256Gcm, Aes256Cbc, Aes128Cbc, RsaesOaep, RsaEncryption]);

    /// <summary>What the gateway can decrypt for an EC user: the same content ciphers, and key agreement in place of
    /// RSA key transport (an EC key cannot decrypt RSA RecipientInfos). RFC 5753 §8: the ECDH capability carries the
    /// key-wrap algorithm as its parameters.</summary>
    public static byte[] OursEc { get; } = Encode([Aes256Gcm, Aes256Cbc, Aes128Cbc, EcdhStdSha256Kdf]);

    /// <summary>The capabilities to announce in a signature made with KEY.</summary>
    public static byte[] OursFor(AsymmetricAlgorithm key) =>
        key is ECDsa ? OursEc : Ours;

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
                    if (oid == EcdhStdSha256Kdf)
                    {
                        // KeyWrapAlgorithm ::= AlgorithmIdentifier { id-aes256-wrap } (parameters absent, RFC 3565 §2.3.2)
                        using (writer.PushSequence())
                        {
                            writer.WriteObjectIdentifier(Aes256Wrap);
                        }
                    }
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
