using System.Formats.Asn1;
using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms.Primitives;

/// <summary>The content-encryption key length of a sender's content cipher. Re-wrapping never touches the content, so
/// this length is all the engine must know about the cipher; every cipher whose key length follows from its
/// AlgorithmIdentifier is accepted, old ones included (RC2, DES, CAST5: some clients still send them).</summary>
internal static class ContentCiphers
{
    /// <summary>The content key length of <paramref name="ed"/>'s cipher; a typed failure when it is not known.</summary>
    public static int KeyLengthOrThrow(EnvelopedDataAsn ed)
    {
        AlgorithmIdentifierAsn alg = ed.EncryptedContentInfo.ContentEncryptionAlgorithm;
        int length = DecoderBoundary.Decode((alg, ed.IsAuthEnveloped), static a => KeyLength(a.alg, a.IsAuthEnveloped),
            $"malformed parameters of content encryption algorithm {alg.Algorithm}");

        if (length == 0)
        {
            CmsRewrapException.Unsupported($"content encryption algorithm {alg.Algorithm} is not supported (its key length is not known)"
                + (ed.IsAuthEnveloped ? " in AuthEnvelopedData" : ""));
        }

        return length;
    }

    /// <summary>Key length in bytes, or 0 when the cipher (or its key length) is not known.</summary>
    /// <exception cref="AsnContentException">Malformed parameters of a cipher whose key length is in them.</exception>
    public static int KeyLength(AlgorithmIdentifierAsn alg, bool authenticated)
    {
        if (authenticated)
        {
            // RFC 5083 §2.1: AuthEnvelopedData needs an authenticated cipher (RFC 5084, RFC 8103).
            return alg.Algorithm switch
            {
                Oids.Aes128Gcm or Oids.Aes128Ccm => 16,
                Oids.Aes192Gcm or Oids.Aes192Ccm => 24,
                Oids.Aes256Gcm or Oids.Aes256Ccm or Oids.ChaCha20Poly1305 => 32,
                _ => 0,
            };
        }

        return alg.Algorithm switch
        {
            Oids.DesCbc => 8,
            Oids.DesEde3Cbc => 24,
            Oids.Aes128Cbc or Oids.Aes128Ofb or Oids.Aes128Cfb or Oids.Camellia128Cbc or Oids.SeedCbc => 16,
            Oids.Aes192Cbc or Oids.Aes192Ofb or Oids.Aes192Cfb or Oids.Camellia192Cbc => 24,
            Oids.Aes256Cbc or Oids.Aes256Ofb or Oids.Aes256Cfb or Oids.Camellia256Cbc => 32,
            Oids.Rc2Cbc => Rc2KeyLength(alg.Parameters),
            Oids.Cast5Cbc => Cast5KeyLength(alg.Parameters),
            _ => 0,
        };
    }

    // RFC 3370 §5.2 / RFC 8018 §B.2.3:
    // RC2-CBC-Parameter ::= SEQUENCE { rc2ParameterVersion INTEGER OPTIONAL, iv OCTET STRING (SIZE(8)) }
    // The version encodes the effective key bits: 160 → 40, 120 → 64, 58 → 128, and values from 256 up are the bits
    // themselves. CMS (and every S/MIME client) uses a key of exactly the effective length.
    private static int Rc2KeyLength(ReadOnlyMemory<byte>? parameters)
    {
        if (parameters is not { } p)
        {
            throw new AsnContentException("RC2-CBC without parameters");
        }

        var outer = new AsnReader(p, AsnEncodingRules.BER);
        AsnReader seq = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        int version = -1;
        if (seq.PeekTag().HasSameClassAndValue(Asn1Tag.Integer) && !seq.TryReadInt32(out version))
        {
            throw new AsnContentException("RC2 parameter version out of range");
        }

        if (seq.ReadOctetString().Length != 8)
        {
            throw new AsnContentException("RC2 IV is not 8 bytes");
        }

        seq.ThrowIfNotEmpty();
        return version switch
        {
            160 => 5,
            120 => 8,
            58 => 16,
            >= 256 and <= 1024 when version % 8 == 0 => version / 8,
            _ => 0,
        };
    }

    // RFC 2984 §3: CAST5CBCParameters ::= SEQUENCE { iv OCTET STRING DEFAULT 0, keyLength INTEGER } (bits).
    // OpenSSL writes only the IV as an OCTET STRING and always uses a 128-bit key.
    private static int Cast5KeyLength(ReadOnlyMemory<byte>? parameters)
    {
        if (parameters is not { } p)
        {
            throw new AsnContentException("CAST5-CBC without parameters");
        }

        var reader = new AsnReader(p, AsnEncodingRules.BER);
        if (reader.PeekTag().HasSameClassAndValue(Asn1Tag.PrimitiveOctetString))
        {
            reader.ReadOctetString();
            reader.ThrowIfNotEmpty();
            return 16;
        }

        AsnReader seq = reader.ReadSequence();
        reader.ThrowIfNotEmpty();
        if (seq.PeekTag().HasSameClassAndValue(Asn1Tag.PrimitiveOctetString))
        {
            seq.ReadOctetString();
        }

        if (!seq.TryReadInt32(out int bits))
        {
            throw new AsnContentException("CAST5 key length out of range");
        }

        seq.ThrowIfNotEmpty();
        return bits is >= 40 and <= 128 && bits % 8 == 0 ? bits / 8 : 0;
    }
}
