using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

// RFC 8017 §A.2.1 / RFC 4055 §3.1
// RSAES-OAEP-params ::= SEQUENCE {
//   hashAlgorithm     [0] HashAlgorithm     DEFAULT sha1,
//   maskGenAlgorithm  [1] MaskGenAlgorithm  DEFAULT mgf1SHA1,
//   pSourceAlgorithm  [2] PSourceAlgorithm  DEFAULT pSpecifiedEmpty }
// (explicit tags: the PKCS#1 module uses EXPLICIT TAGS)
internal sealed record RsaesOaepParamsAsn(string HashAlgorithm, string MaskGenHashAlgorithm, byte[] Label)
{
    private static readonly RsaesOaepParamsAsn s_defaults = new(Oids.Sha1, Oids.Sha1, []);

    /// <summary>Decode the parameters strictly (cf. openssl issue #32567: malformed OAEP parameters must never fall back
    /// to another padding). Every combination of the allowed hashes is accepted, and any label: Java's default
    /// OAEPWithSHA-256AndMGF1Padding sends SHA-256 with MGF1-SHA-1, which .NET's RSAEncryptionPadding cannot express.</summary>
    public static RsaesOaepParamsAsn Decode(ReadOnlyMemory<byte>? parameters)
    {
        if (parameters is not { } p || p.Span.SequenceEqual((ReadOnlySpan<byte>)[0x05, 0x00]))
        {
            return s_defaults;
        }

        string hash = Oids.Sha1;
        string mgfHash = Oids.Sha1;
        byte[] label = [];
        var outer = new AsnReader(p, AsnEncodingRules.BER);
        AsnReader seq = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        if (ReadExplicit(seq, AsnTags.Constructed0) is { } hashAlg)
        {
            hash = HashOid(hashAlg);
        }

        if (ReadExplicit(seq, AsnTags.Constructed1) is { } mgf)
        {
            if (mgf.Algorithm != Oids.Mgf1 || mgf.Parameters is null)
            {
                throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"OAEP mask generation {mgf.Algorithm} is not MGF1");
            }

            var mgfReader = new AsnReader(mgf.Parameters.Value, AsnEncodingRules.BER);
            mgfHash = HashOid(AlgorithmIdentifierAsn.Decode(mgfReader));
            mgfReader.ThrowIfNotEmpty();
        }

        if (ReadExplicit(seq, AsnTags.Constructed2) is { } ps)
        {
            if (ps.Algorithm != Oids.PSpecified || ps.Parameters is not { } encodedLabel)
            {
                throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"OAEP label source {ps.Algorithm} is not id-pSpecified");
            }

            var labelReader = new AsnReader(encodedLabel, AsnEncodingRules.BER);
            label = labelReader.ReadOctetString();
            labelReader.ThrowIfNotEmpty();
        }

        seq.ThrowIfNotEmpty();
        RequireAllowedHash(hash, "OAEP hash");
        RequireAllowedHash(mgfHash, "OAEP MGF1 hash");
        return new RsaesOaepParamsAsn(hash, mgfHash, label);
    }

    private static void RequireAllowedHash(string oid, string what)
    {
        if (oid is not (Oids.Sha1 or Oids.Sha224 or Oids.Sha256 or Oids.Sha384 or Oids.Sha512))
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"{what} {oid} is not supported");
        }
    }

    /// <summary>The AlgorithmIdentifier inside an optional [n] EXPLICIT field, or null when the field is absent.</summary>
    private static AlgorithmIdentifierAsn? ReadExplicit(AsnReader seq, Asn1Tag tag)
    {
        if (!seq.HasData || !seq.PeekTag().HasSameClassAndValue(tag))
        {
            return null;
        }

        AsnReader field = seq.ReadSequence(tag);
        AlgorithmIdentifierAsn alg = AlgorithmIdentifierAsn.Decode(field);
        field.ThrowIfNotEmpty();
        return alg;
    }

    private static string HashOid(AlgorithmIdentifierAsn alg)
    {
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
