using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;

namespace MilterSecureList.KeyRelease;

/// <summary>A member's request for a post's key (docs/key-release.md §4.2), signed as CMS SignedData.</summary>
/// <remarks>
/// <code>
/// ReleaseRequest ::= SEQUENCE {
///   version    INTEGER (0),
///   messageId  OCTET STRING (SIZE (16)),
///   member     UTF8String,
///   nonce      OCTET STRING (SIZE (16..64)),
///   time       GeneralizedTime,
///   binding    OCTET STRING (SIZE (32)) }
/// </code>
/// </remarks>
public sealed record ReleaseRequest(byte[] MessageId, string Member, byte[] Nonce, DateTimeOffset Time, byte[] Binding)
{
    /// <summary>Largest signed request the key server reads (a certificate chain fits easily).</summary>
    public const int MaxSignedBytes = 64 * 1024;

    private const string ContentTypeAttribute = "1.2.840.113549.1.9.3";
    private const string MessageDigestAttribute = "1.2.840.113549.1.9.4";
    private const string Sha256WithRsa = "1.2.840.113549.1.1.11";

    public byte[] Encode()
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteInteger(0);
            w.WriteOctetString(MessageId);
            w.WriteCharacterString(UniversalTagNumber.UTF8String, Member);
            w.WriteOctetString(Nonce);
            w.WriteGeneralizedTime(Cms.KeyRelease.ReleasePolicy.TruncateToSeconds(Time), omitFractionalSeconds: true);
            w.WriteOctetString(Binding);
        }

        return w.Encode();
    }

    /// <summary>Strict DER; sizes checked. Throws <see cref="FormatException"/>.</summary>
    public static ReleaseRequest Decode(ReadOnlyMemory<byte> der)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            AsnReader seq = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            if (!seq.TryReadInt32(out int version) || version != 0)
            {
                throw new FormatException("release request version is not 0");
            }

            byte[] messageId = seq.ReadOctetString();
            string member = seq.ReadCharacterString(UniversalTagNumber.UTF8String);
            byte[] nonce = seq.ReadOctetString();
            DateTimeOffset time = seq.ReadGeneralizedTime();
            byte[] binding = seq.ReadOctetString();
            seq.ThrowIfNotEmpty();
            if (messageId.Length != Cms.KeyRelease.KeyReleaseEntry.MessageIdLength || nonce.Length is < 16 or > 64
                || binding.Length != Cms.KeyRelease.KeyReleaseEntry.BindingLength || member.Length is 0 or > 254)
            {
                throw new FormatException("release request field out of range");
            }

            return new ReleaseRequest(messageId, member, nonce, time, binding);
        }
        catch (AsnContentException e)
        {
            throw new FormatException("malformed release request: " + e.Message, e);
        }
    }

    /// <summary>SignedData (RFC 5652 §5) with eContentType id-msl-kr-request, SHA-256, the signer's certificate included.</summary>
    public byte[] Sign(X509Certificate2 certificate, AsymmetricAlgorithm privateKey)
    {
        var content = new ContentInfo(new Oid(Oids.KeyReleaseRequest), Encode());
        var cms = new SignedCms(content, detached: false);
        var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, certificate, privateKey)
        {
            DigestAlgorithm = new Oid(Oids.Sha256),
            IncludeOption = X509IncludeOption.EndCertOnly,
        };
        cms.ComputeSignature(signer, silent: true);
        return cms.Encode();
    }

    /// <summary>
    /// <see cref="Verify(ReadOnlySpan{byte})"/>, but a DER request signed under a certificate in <paramref name="signers"/>
    /// (RSA PKCS#1 v1.5 with SHA-256 over signed attributes, as <see cref="Sign"/> and ordinary S/MIME clients write it)
    /// is verified with the cached key instead of parsing its certificate and importing its key again. Anything else,
    /// and anything the quick path does not accept, goes the general way, which decides. <c>Cached</c>: the signer is the
    /// cache's (the caller must not dispose it); otherwise the caller owns it.
    /// </summary>
    public static (ReleaseRequest Request, X509Certificate2 Signer, bool Cached) Verify(ReadOnlyMemory<byte> signed, ReleaseSignerCache signers)
    {
        ArgumentNullException.ThrowIfNull(signers);
        if (signed.Length <= MaxSignedBytes && TryVerifyCached(signed, signers) is { } quick)
        {
            return (quick.Request, quick.Signer.Certificate, true);
        }

        (ReleaseRequest request, X509Certificate2 signer) = Verify(signed.Span);
        return (request, signer, false);
    }

    private static (ReleaseRequest Request, ReleaseSignerCache.Signer Signer)? TryVerifyCached(ReadOnlyMemory<byte> signed, ReleaseSignerCache signers)
    {
        var context0 = new Asn1Tag(TagClass.ContextSpecific, 0);
        try
        {
            var outer = new AsnReader(signed, AsnEncodingRules.DER);
            AsnReader contentInfo = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            if (contentInfo.ReadObjectIdentifier() != Oids.SignedData)
            {
                return null;
            }

            AsnReader wrapper = contentInfo.ReadSequence(context0);
            contentInfo.ThrowIfNotEmpty();
            AsnReader signedData = wrapper.ReadSequence();
            wrapper.ThrowIfNotEmpty();
            signedData.ReadInteger();
            signedData.ReadSetOf(skipSortOrderValidation: true);
            AsnReader encapsulated = signedData.ReadSequence();
            if (encapsulated.ReadObjectIdentifier() != Oids.KeyReleaseRequest || !encapsulated.HasData)
            {
                return null;
            }

            AsnReader eContent = encapsulated.ReadSequence(context0);
            byte[] content = eContent.ReadOctetString();
            eContent.ThrowIfNotEmpty();
            encapsulated.ThrowIfNotEmpty();
            var certificates = new List<ReadOnlyMemory<byte>>();
            if (signedData.HasData && signedData.PeekTag().HasSameClassAndValue(context0))
            {
                AsnReader set = signedData.ReadSetOf(skipSortOrderValidation: true, expectedTag: context0);
                while (set.HasData)
                {
                    certificates.Add(set.ReadEncodedValue());
                }
            }

            AsnReader signerInfos = signedData.ReadSetOf(skipSortOrderValidation: true);
            signedData.ThrowIfNotEmpty();
            AsnReader signerInfo = signerInfos.ReadSequence();
            if (signerInfos.HasData || !signerInfo.TryReadInt32(out int version) || version != 1)
            {
                return null;
            }

            ReadOnlyMemory<byte> sid = signerInfo.ReadEncodedValue();
            if (!IsAlgorithm(signerInfo.ReadSequence(), Oids.Sha256, null) || !signerInfo.HasData || !signerInfo.PeekTag().HasSameClassAndValue(context0))
            {
                return null;
            }

            ReadOnlyMemory<byte> attributes = signerInfo.ReadEncodedValue();
            if (!IsAlgorithm(signerInfo.ReadSequence(), Oids.RsaEncryption, Sha256WithRsa))
            {
                return null;
            }

            byte[] signature = signerInfo.ReadOctetString();
            if (signerInfo.HasData)
            {
                return null; // unsigned attributes: the general path
            }

            if (!SignedAttributesMatch(attributes, content))
            {
                return null;
            }

            foreach (ReadOnlyMemory<byte> certificate in certificates)
            {
                if (signers.Find(certificate.Span) is { } signer && signer.IssuerAndSerial.AsSpan().SequenceEqual(sid.Span))
                {
                    // The signature is over the DER SET OF the signed attributes (RFC 5652 §5.4): the same bytes, tagged SET.
                    byte[] signedBytes = attributes.ToArray();
                    signedBytes[0] = 0x31;
                    return signer.PublicKey.VerifyData(signedBytes, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
                        ? (Decode(content), signer)
                        : null;
                }
            }

            return null;
        }
        catch (Exception e) when (e is AsnContentException or FormatException or CryptographicException)
        {
            return null;
        }
    }

    /// <summary>Exactly one content-type attribute naming id-msl-kr-request and one message-digest equal to the content's
    /// SHA-256 (RFC 5652 §11.1, §11.2); other attributes (signing time) are allowed.</summary>
    private static bool SignedAttributesMatch(ReadOnlyMemory<byte> encoded, byte[] content)
    {
        var reader = new AsnReader(encoded, AsnEncodingRules.DER);
        AsnReader set = reader.ReadSetOf(skipSortOrderValidation: true, expectedTag: new Asn1Tag(TagClass.ContextSpecific, 0));
        reader.ThrowIfNotEmpty();
        string? contentType = null;
        byte[]? digest = null;
        while (set.HasData)
        {
            AsnReader attribute = set.ReadSequence();
            string type = attribute.ReadObjectIdentifier();
            AsnReader values = attribute.ReadSetOf(skipSortOrderValidation: true);
            attribute.ThrowIfNotEmpty();
            if (type is ContentTypeAttribute or MessageDigestAttribute)
            {
                if ((type == ContentTypeAttribute ? contentType : (object?)digest) is not null)
                {
                    return false;
                }

                if (type == ContentTypeAttribute)
                {
                    contentType = values.ReadObjectIdentifier();
                }
                else
                {
                    digest = values.ReadOctetString();
                }

                values.ThrowIfNotEmpty();
            }
        }

        return contentType == Oids.KeyReleaseRequest && digest is not null && SHA256.HashData(content).AsSpan().SequenceEqual(digest);
    }

    private static bool IsAlgorithm(AsnReader algorithm, string oid, string? alternative)
    {
        string found = algorithm.ReadObjectIdentifier();
        if (algorithm.HasData)
        {
            algorithm.ReadNull();
        }

        algorithm.ThrowIfNotEmpty();
        return found == oid || found == alternative;
    }

    /// <summary>Verifies a signed request: one signer, our eContentType, a valid signature by the certificate it
    /// carries. Chain and usage are not checked here: the key server then requires that exact certificate to be the
    /// member's current one in the directory. Throws <see cref="FormatException"/> or <see cref="CryptographicException"/>.</summary>
    public static (ReleaseRequest Request, X509Certificate2 Signer) Verify(ReadOnlySpan<byte> signed)
    {
        if (signed.Length > MaxSignedBytes)
        {
            throw new FormatException("signed release request too large");
        }

        var cms = new SignedCms();
        cms.Decode(signed);
        if (cms.ContentInfo.ContentType.Value != Oids.KeyReleaseRequest || cms.Detached)
        {
            throw new FormatException("not a release request");
        }

        if (cms.SignerInfos.Count != 1 || cms.SignerInfos[0].Certificate is not { } certificate)
        {
            throw new FormatException("a release request has exactly one signer, whose certificate it carries");
        }

        cms.SignerInfos[0].CheckSignature(verifySignatureOnly: true);
        return (Decode(cms.ContentInfo.Content), certificate);
    }
}
