using System.Formats.Asn1;
using System.Security.Cryptography;

namespace MilterSecureList.Cms.Asn1;

// RFC 8017 §A.2.1 / RFC 4055 §3.1
// RSAES-OAEP-params ::= SEQUENCE {
//   hashAlgorithm     [0] HashAlgorithm     DEFAULT sha1,
//   maskGenAlgorithm  [1] MaskGenAlgorithm  DEFAULT mgf1SHA1,
//   pSourceAlgorithm  [2] PSourceAlgorithm  DEFAULT pSpecifiedEmpty }
// (explicit tags: the PKCS#1 module uses EXPLICIT TAGS)
internal static class RsaesOaepParamsAsn
{
    /// <summary>Map the parameters to a .NET padding. .NET cannot express MGF1-hash ≠ OAEP-hash or a label,
    /// so those are refused (strict parsing; cf. openssl issue #32567).</summary>
    public static RSAEncryptionPadding Decode(ReadOnlyMemory<byte>? parameters)
    {
        string hash = Oids.Sha1;
        string mgfHash = Oids.Sha1;
        if (parameters is { } p && !p.Span.SequenceEqual((ReadOnlySpan<byte>)[0x05, 0x00]))
        {
            var outer = new AsnReader(p, AsnEncodingRules.BER);
            AsnReader seq = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            if (seq.HasData && seq.PeekTag().HasSameClassAndValue(AsnTags.Context0))
            {
                AsnReader e = seq.ReadSequence(AsnTags.Constructed0);
                hash = ReadHash(e);
                e.ThrowIfNotEmpty();
            }

            if (seq.HasData && seq.PeekTag().HasSameClassAndValue(AsnTags.Context1))
            {
                AsnReader e = seq.ReadSequence(AsnTags.Constructed1);
                AlgorithmIdentifierAsn mgf = AlgorithmIdentifierAsn.Decode(e);
                e.ThrowIfNotEmpty();
                if (mgf.Algorithm != Oids.Mgf1 || mgf.Parameters is null)
                {
                    throw new UnsupportedCmsException($"OAEP mask generation {mgf.Algorithm} is not MGF1");
                }

                mgfHash = ReadHash(new AsnReader(mgf.Parameters.Value, AsnEncodingRules.BER));
            }

            if (seq.HasData && seq.PeekTag().HasSameClassAndValue(AsnTags.Context2))
            {
                AsnReader e = seq.ReadSequence(AsnTags.Constructed2);
                AlgorithmIdentifierAsn ps = AlgorithmIdentifierAsn.Decode(e);
                e.ThrowIfNotEmpty();
                if (ps.Algorithm != Oids.PSpecified || ps.Parameters is not { } label
                    || new AsnReader(label, AsnEncodingRules.BER).ReadOctetString().Length != 0)
                {
                    throw new UnsupportedCmsException("OAEP with a non-empty label is not supported");
                }
            }

            seq.ThrowIfNotEmpty();
        }

        if (hash != mgfHash)
        {
            throw new UnsupportedCmsException("OAEP with an MGF1 hash different from the OAEP hash is not supported");
        }

        return hash switch
        {
            Oids.Sha1 => RSAEncryptionPadding.OaepSHA1,
            Oids.Sha256 => RSAEncryptionPadding.OaepSHA256,
            Oids.Sha384 => RSAEncryptionPadding.OaepSHA384,
            Oids.Sha512 => RSAEncryptionPadding.OaepSHA512,
            _ => throw new UnsupportedCmsException($"OAEP hash {hash} is not supported"),
        };
    }

    private static string ReadHash(AsnReader reader)
    {
        AlgorithmIdentifierAsn alg = AlgorithmIdentifierAsn.Decode(reader);
        if (!alg.HasNullOrAbsentParameters)
        {
            throw new AsnContentException("hash algorithm parameters must be absent or NULL");
        }

        return alg.Algorithm;
    }

    /// <summary>RSAES-OAEP-params for SHA-256 / MGF1-SHA-256 as openssl writes them (hash parameters absent; docs/cms.md §6.1).</summary>
    public static readonly byte[] Sha256Encoded = Convert.FromHexString(
        "302B" + "A00D300B0609608648016503040201" + "A11A3018" + "06092A864886F70D010108" + "300B0609608648016503040201");
}
