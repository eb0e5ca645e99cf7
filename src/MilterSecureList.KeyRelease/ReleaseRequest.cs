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
