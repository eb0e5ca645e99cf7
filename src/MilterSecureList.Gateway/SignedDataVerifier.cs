using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;

namespace MilterSecureList.Gateway;

// RFC 5652 §3, §5 as far as checking a signature needs it (BER accepted, as senders write it):
// ContentInfo ::= SEQUENCE { contentType OID (id-signedData), content [0] EXPLICIT SignedData }
// SignedData ::= SEQUENCE { version, digestAlgorithms SET OF AlgorithmIdentifier,
//   encapContentInfo SEQUENCE { eContentType OID, eContent [0] EXPLICIT OCTET STRING OPTIONAL },
//   certificates [0] IMPLICIT CertificateSet OPTIONAL, crls [1] IMPLICIT ... OPTIONAL, signerInfos SET OF SignerInfo }
// SignerInfo ::= SEQUENCE { version, sid (IssuerAndSerialNumber | [0] SubjectKeyIdentifier), digestAlgorithm,
//   signedAttrs [0] IMPLICIT SET OF Attribute OPTIONAL, signatureAlgorithm, signature OCTET STRING,
//   unsignedAttrs [1] IMPLICIT ... OPTIONAL }

/// <summary>
/// Checks the SignerInfos of a CMS SignedData directly, without <c>SignedCms</c> and its copies of the content
/// (docs/design.md, "Gateway performance"): for every SignerInfo the signer's certificate among the SignedData's
/// certificates, the content digest, and the signature. With signed attributes (RFC 5652 §5.4) the content-type
/// attribute must name the encapsulated content type and the message-digest attribute must hold the content's
/// digest, each present exactly once with one value, and the signature covers the attributes as received with the
/// SET OF tag; without them the signature covers the content. Digests SHA-1/256/384/512; signatures RSA PKCS#1
/// v1.5, RSASSA-PSS (MGF1 with the same hash, salt of the hash's length) and ECDSA. The chain and the signer's
/// address are the caller's checks. A failure is a <see cref="SignedDataProblem"/>, never another exception.
/// </summary>
internal static class SignedDataVerifier
{
    private const string RsassaPss = "1.2.840.113549.1.1.10";
    private static readonly Asn1Tag s_context0 = new(TagClass.ContextSpecific, 0);
    private static readonly Asn1Tag s_context0Constructed = new(TagClass.ContextSpecific, 0, isConstructed: true);
    private static readonly Asn1Tag s_context1 = new(TagClass.ContextSpecific, 1);

    /// <summary>Checks ENCODED (a ContentInfo); DETACHEDCONTENT is the signed content of a detached signature, null
    /// for an encapsulating one. CERTIFICATES turns DER into parsed certificates (the caller's cache, which also keeps their public keys).</summary>
    public static SignedDataCheck Verify(ReadOnlyMemory<byte> encoded, ReadOnlyMemory<byte>? detachedContent, Func<byte[], ParsedCertificate> certificates)
    {
        SignedDataAsn data;
        try
        {
            data = SignedDataAsn.Decode(encoded);
        }
        catch (AsnContentException e)
        {
            return SignedDataCheck.Fail(SignedDataProblem.Unreadable, e.Message);
        }

        if (data.Signers.Count == 0)
        {
            return SignedDataCheck.Fail(SignedDataProblem.NoSigner, "no SignerInfo");
        }

        ReadOnlyMemory<byte> content = detachedContent ?? data.Content ?? ReadOnlyMemory<byte>.Empty;
        var parsed = new List<ParsedCertificate>(data.Certificates.Count);
        var included = new X509Certificate2Collection();
        foreach (byte[] der in data.Certificates)
        {
            try
            {
                ParsedCertificate certificate = certificates(der);
                parsed.Add(certificate);
                included.Add(certificate.Certificate);
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                // An unreadable certificate is no signer and no link of a chain: left out.
            }
        }

        X509Certificate2? first = null;
        byte[]? capabilities = null;
        for (int i = 0; i < data.Signers.Count; i++)
        {
            SignerInfoAsn signer = data.Signers[i];
            ParsedCertificate? certificate = signer.FindCertificate(parsed);
            if (certificate is null)
            {
                return i == 0
                    ? SignedDataCheck.Fail(SignedDataProblem.NoCertificate, "the signer's certificate is not included")
                    : SignedDataCheck.Fail(SignedDataProblem.Mismatch, $"no certificate for SignerInfo {i + 1}");
            }

            string? problem;
            byte[]? signerCapabilities;
            try
            {
                problem = signer.Check(data.ContentType, content.Span, certificate, out signerCapabilities);
            }
            catch (Exception e) when (e is AsnContentException or CryptographicException)
            {
                problem = e.Message;
                signerCapabilities = null;
            }

            if (problem is not null)
            {
                return SignedDataCheck.Fail(SignedDataProblem.Mismatch, problem);
            }

            if (i == 0)
            {
                first = certificate.Certificate;
                capabilities = signerCapabilities;
            }
        }

        return new SignedDataCheck(null, null, first, included, capabilities, detachedContent is null ? data.Content : null);
    }

    private static HashAlgorithmName? DigestFor(string oid) => oid switch
    {
        Oids.Sha1 => HashAlgorithmName.SHA1,
        Oids.Sha256 => HashAlgorithmName.SHA256,
        Oids.Sha384 => HashAlgorithmName.SHA384,
        Oids.Sha512 => HashAlgorithmName.SHA512,
        _ => null,
    };

    private static ReadOnlyMemory<byte> ReadOctets(AsnReader reader, Asn1Tag? tag = null) =>
        reader.TryReadPrimitiveOctetString(out ReadOnlyMemory<byte> octets, tag) ? octets : reader.ReadOctetString(tag);

    /// <summary>The parts of a SignedData a check reads, as slices of the encoding where it is primitive.</summary>
    private sealed class SignedDataAsn
    {
        public required string ContentType { get; init; }

        public ReadOnlyMemory<byte>? Content { get; init; }

        public required List<byte[]> Certificates { get; init; }

        public required List<SignerInfoAsn> Signers { get; init; }

        public static SignedDataAsn Decode(ReadOnlyMemory<byte> encoded)
        {
            var outer = new AsnReader(encoded, AsnEncodingRules.BER);
            AsnReader contentInfo = outer.ReadSequence();
            if (contentInfo.ReadObjectIdentifier() != Oids.SignedData)
            {
                throw new AsnContentException("the content type is not signed-data");
            }

            AsnReader signedData = contentInfo.ReadSequence(s_context0Constructed).ReadSequence();
            signedData.ReadInteger();
            signedData.ReadSetOf(skipSortOrderValidation: true);
            AsnReader encapsulated = signedData.ReadSequence();
            string contentType = encapsulated.ReadObjectIdentifier();
            ReadOnlyMemory<byte>? content = null;
            if (encapsulated.HasData)
            {
                content = ReadOctets(encapsulated.ReadSequence(s_context0Constructed));
            }

            var certificates = new List<byte[]>();
            if (signedData.PeekTag().HasSameClassAndValue(s_context0))
            {
                AsnReader set = signedData.ReadSetOf(skipSortOrderValidation: true, s_context0Constructed);
                while (set.HasData)
                {
                    // CertificateChoices: only plain X.509 certificates (a SEQUENCE) are used; the tagged others are skipped.
                    bool certificate = set.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence);
                    ReadOnlyMemory<byte> value = set.ReadEncodedValue();
                    if (certificate && certificates.Count < 32)
                    {
                        certificates.Add(value.ToArray());
                    }
                }
            }

            if (signedData.PeekTag().HasSameClassAndValue(s_context1))
            {
                signedData.ReadEncodedValue();
            }

            var signers = new List<SignerInfoAsn>();
            AsnReader signerInfos = signedData.ReadSetOf(skipSortOrderValidation: true);
            while (signerInfos.HasData)
            {
                signers.Add(SignerInfoAsn.Decode(signerInfos.ReadSequence()));
            }

            return new SignedDataAsn { ContentType = contentType, Content = content, Certificates = certificates, Signers = signers };
        }
    }

    private sealed class SignerInfoAsn
    {
        private ReadOnlyMemory<byte> _issuer;
        private ReadOnlyMemory<byte> _serial;
        private ReadOnlyMemory<byte>? _subjectKeyIdentifier;
        private string _digestAlgorithm = string.Empty;
        private ReadOnlyMemory<byte>? _signedAttributes;
        private string _signatureAlgorithm = string.Empty;
        private ReadOnlyMemory<byte>? _signatureParameters;
        private ReadOnlyMemory<byte> _signature;

        public static SignerInfoAsn Decode(AsnReader reader)
        {
            var info = new SignerInfoAsn();
            reader.ReadInteger();
            if (reader.PeekTag().HasSameClassAndValue(s_context0))
            {
                info._subjectKeyIdentifier = ReadOctets(reader, s_context0);
            }
            else
            {
                AsnReader sid = reader.ReadSequence();
                info._issuer = sid.ReadEncodedValue();
                info._serial = sid.ReadIntegerBytes();
            }

            info._digestAlgorithm = reader.ReadSequence().ReadObjectIdentifier();
            if (reader.PeekTag().HasSameClassAndValue(s_context0))
            {
                info._signedAttributes = reader.ReadEncodedValue();
            }

            AsnReader algorithm = reader.ReadSequence();
            info._signatureAlgorithm = algorithm.ReadObjectIdentifier();
            info._signatureParameters = algorithm.HasData ? algorithm.ReadEncodedValue() : null;
            info._signature = ReadOctets(reader);
            return info;
        }

        public ParsedCertificate? FindCertificate(List<ParsedCertificate> certificates)
        {
            foreach (ParsedCertificate parsed in certificates)
            {
                X509Certificate2 certificate = parsed.Certificate;
                bool match = _subjectKeyIdentifier is { } ski
                    ? MatchesKeyIdentifier(certificate, ski.Span)
                    : certificate.SerialNumberBytes.Span.SequenceEqual(_serial.Span)
                        && certificate.IssuerName.RawData.AsSpan().SequenceEqual(_issuer.Span);
                if (match)
                {
                    return parsed;
                }
            }

            return null;
        }

        /// <summary>Whether SKI names CERTIFICATE: its subjectKeyIdentifier extension or, without one, the SHA-1 of its
        /// public key (RFC 5280 §4.2.1.2, method 1) or of its whole SubjectPublicKeyInfo (what SignedCms writes then).</summary>
        private static bool MatchesKeyIdentifier(X509Certificate2 certificate, ReadOnlySpan<byte> ski)
        {
            if (certificate.Extensions.OfType<X509SubjectKeyIdentifierExtension>().FirstOrDefault() is { } extension)
            {
                return extension.SubjectKeyIdentifierBytes.Span.SequenceEqual(ski);
            }

            return ski.SequenceEqual(new X509SubjectKeyIdentifierExtension(certificate.PublicKey, X509SubjectKeyIdentifierHashAlgorithm.Sha1, false).SubjectKeyIdentifierBytes.Span)
                || ski.SequenceEqual(new X509SubjectKeyIdentifierExtension(certificate.PublicKey, X509SubjectKeyIdentifierHashAlgorithm.CapiSha1, false).SubjectKeyIdentifierBytes.Span);
        }

        /// <summary>Null when this SignerInfo holds for CONTENT and CERTIFICATE, else why not.</summary>
        public string? Check(string contentType, ReadOnlySpan<byte> content, ParsedCertificate certificate, out byte[]? capabilities)
        {
            capabilities = null;
            if (DigestFor(_digestAlgorithm) is not { } hash)
            {
                return $"digest algorithm {_digestAlgorithm} is not supported";
            }

            byte[] digest = CryptographicOperations.HashData(hash, content);
            byte[] signedHash;
            if (_signedAttributes is { } attributes)
            {
                if (CheckAttributes(attributes, contentType, digest, out capabilities) is { } problem)
                {
                    return problem;
                }

                // What was signed is the DER SET OF: the [0] IMPLICIT tag as received becomes the SET tag (RFC 5652 §5.4).
                using var hasher = IncrementalHash.CreateHash(hash);
                hasher.AppendData([0x31]);
                hasher.AppendData(attributes.Span[1..]);
                signedHash = hasher.GetHashAndReset();
            }
            else
            {
                signedHash = digest;
            }

            return VerifySignature(hash, signedHash, certificate) ? null : "the signature value does not verify";
        }

        private static string? CheckAttributes(ReadOnlyMemory<byte> attributes, string contentType, byte[] digest, out byte[]? capabilities)
        {
            capabilities = null;
            int contentTypes = 0;
            int digests = 0;
            AsnReader set = new AsnReader(attributes, AsnEncodingRules.BER).ReadSetOf(skipSortOrderValidation: true, s_context0Constructed);
            while (set.HasData)
            {
                AsnReader attribute = set.ReadSequence();
                string type = attribute.ReadObjectIdentifier();
                AsnReader values = attribute.ReadSetOf(skipSortOrderValidation: true);
                switch (type)
                {
                    case SignedDataWriter.ContentTypeAttribute:
                        contentTypes++;
                        if (values.ReadObjectIdentifier() != contentType || values.HasData)
                        {
                            return "the content-type attribute does not name the signed content's type";
                        }

                        break;
                    case SignedDataWriter.MessageDigestAttribute:
                        digests++;
                        if (!ReadOctets(values).Span.SequenceEqual(digest) || values.HasData)
                        {
                            return "the message digest does not match the content";
                        }

                        break;
                    case SmimeCapabilities.AttributeOid when values.HasData:
                        capabilities = values.ReadEncodedValue().ToArray();
                        break;
                }
            }

            return (contentTypes, digests) switch
            {
                (1, 1) => null,
                (0, _) => "the signed attributes have no content-type attribute",
                (_, 0) => "the signed attributes have no message-digest attribute",
                _ => "a content-type or message-digest attribute appears more than once",
            };
        }

        private bool VerifySignature(HashAlgorithmName hash, byte[] signedHash, ParsedCertificate certificate)
        {
            switch (_signatureAlgorithm)
            {
                case Oids.RsaEncryption:
                case "1.2.840.113549.1.1.5" when hash == HashAlgorithmName.SHA1:
                case "1.2.840.113549.1.1.11" when hash == HashAlgorithmName.SHA256:
                case "1.2.840.113549.1.1.12" when hash == HashAlgorithmName.SHA384:
                case "1.2.840.113549.1.1.13" when hash == HashAlgorithmName.SHA512:
                    return VerifyRsa(certificate, signedHash, hash, RSASignaturePadding.Pkcs1);
                case RsassaPss:
                    return PssMatches(hash) && VerifyRsa(certificate, signedHash, hash, RSASignaturePadding.Pss);
                case Oids.EcPublicKey:
                case "1.2.840.10045.4.1" when hash == HashAlgorithmName.SHA1:
                case "1.2.840.10045.4.3.2" when hash == HashAlgorithmName.SHA256:
                case "1.2.840.10045.4.3.3" when hash == HashAlgorithmName.SHA384:
                case "1.2.840.10045.4.3.4" when hash == HashAlgorithmName.SHA512:
                    return certificate.VerificationKey is ECDsa ec && ec.VerifyHash(signedHash, _signature.Span, DSASignatureFormat.Rfc3279DerSequence);

                default:
                    return false; // an unknown algorithm, or one whose hash is not the SignerInfo's digest algorithm
            }
        }

        private bool VerifyRsa(ParsedCertificate certificate, byte[] signedHash, HashAlgorithmName hash, RSASignaturePadding padding) =>
            certificate.VerificationKey is RSA rsa && rsa.VerifyHash(signedHash, _signature.Span, hash, padding);

        /// <summary>RSASSA-PSS-params (RFC 4055 §3.1) as .NET verifies PSS: the SignerInfo's hash, MGF1 with the same
        /// hash, a salt as long as the hash, trailer field 1.</summary>
        private bool PssMatches(HashAlgorithmName hash)
        {
            if (_signatureParameters is not { } parameters)
            {
                return false;
            }

            string pssHash = Oids.Sha1;
            string mgfHash = Oids.Sha1;
            int salt = 20;
            int trailer = 1;
            AsnReader sequence = new AsnReader(parameters, AsnEncodingRules.BER).ReadSequence();
            for (int tag = 0; tag <= 3 && sequence.HasData; tag++)
            {
                var explicitTag = new Asn1Tag(TagClass.ContextSpecific, tag, isConstructed: true);
                if (!sequence.PeekTag().HasSameClassAndValue(explicitTag))
                {
                    continue;
                }

                AsnReader field = sequence.ReadSequence(explicitTag);
                switch (tag)
                {
                    case 0:
                        pssHash = field.ReadSequence().ReadObjectIdentifier();
                        break;
                    case 1:
                        AsnReader mgf = field.ReadSequence();
                        mgfHash = mgf.ReadObjectIdentifier() == Oids.Mgf1 ? mgf.ReadSequence().ReadObjectIdentifier() : string.Empty;
                        break;
                    case 2:
                        salt = field.TryReadInt32(out int s) ? s : -1;
                        break;
                    default:
                        trailer = field.TryReadInt32(out int t) ? t : -1;
                        break;
                }
            }

            return !sequence.HasData && DigestFor(pssHash) == hash && DigestFor(mgfHash) == hash && trailer == 1
                && salt == HashLength(hash);
        }

        private static int HashLength(HashAlgorithmName hash) =>
            hash == HashAlgorithmName.SHA1 ? 20 : hash == HashAlgorithmName.SHA256 ? 32 : hash == HashAlgorithmName.SHA384 ? 48 : 64;
    }
}

/// <summary>Why a SignedData did not verify, in the categories the gateway's replies name.</summary>
internal enum SignedDataProblem
{
    Unreadable,
    NoSigner,
    NoCertificate,
    Mismatch,
}

/// <summary>The outcome of <see cref="SignedDataVerifier.Verify"/>: no problem, the first signer's certificate, every
/// included certificate (for the chain), its S/MIME capabilities, and the encapsulated content when not detached.</summary>
internal sealed record SignedDataCheck(SignedDataProblem? Problem, string? Detail, X509Certificate2? Signer, X509Certificate2Collection? Certificates, byte[]? Capabilities, ReadOnlyMemory<byte>? Content)
{
    public static SignedDataCheck Fail(SignedDataProblem problem, string detail) => new(problem, detail, null, null, null, null);
}
