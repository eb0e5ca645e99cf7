using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Mime;
using MimeKit;
using MimeKit.Cryptography;
using MimeKit.IO;
using MimeKit.Text;

namespace MilterSecureList.Admin.DoubleWrap;

/// <summary>The MIME side of the member and sender tools, on MimeKit: S/MIME entities in and out (RFC 8551 §3), ordinary
/// encryption to one certificate, and opaque signing (RFC 8551 §3.5.2, SignedData inside application/pkcs7-mime).
/// Everything that is signed or encrypted is first written in canonical form, CRLF line ends (RFC 8551 §3.1.1), by
/// <see cref="Canonical"/>; those bytes are then what the CMS covers, so nothing is re-serialised in between.</summary>
public static class SmimeEntities
{
    /// <summary>MimeKit's output options for canonical MIME: CRLF line ends.</summary>
    public static FormatOptions Canonical { get; } = CreateCanonical();

    /// <summary>The outer header fields (MIME-Version is MimeKit's), then the S/MIME entity around <paramref name="cms"/>:
    /// application/pkcs7-mime, enveloped-data or authEnveloped-data, base64.</summary>
    public static byte[] WriteEncrypted(IEnumerable<Header> outerHeaders, ReadOnlySpan<byte> cms, bool authEnveloped)
    {
        using var message = new MimeMessage(outerHeaders.Where(h => h.Id != HeaderId.MimeVersion))
        {
            Body = Pkcs7Mime(authEnveloped ? SecureMimeType.AuthEnvelopedData : SecureMimeType.EnvelopedData, cms),
        };
        using var output = new MemoryStream(cms.Length * 4 / 3 + 1024);
        message.WriteTo(Canonical, output);
        return output.ToArray();
    }

    /// <summary>The MIME entity of a message to encrypt, canonical, with its Content-* fields (text/plain in UTF-8 when it
    /// has none), and the other fields (From, To, Subject, ...) to go on the outside. Input without a header block is all
    /// text.</summary>
    public static (byte[] Entity, IReadOnlyList<Header> OuterHeaders) ExtractEntity(byte[] message)
    {
        MimeMessage parsed;
        try
        {
            // Persistent: the parsed content stays a window on MESSAGE (which the caller zeroes), not a copy.
            parsed = MimeMessage.Load(new MemoryStream(message, writable: false), persistent: true);
        }
        catch (FormatException)
        {
            using TextPart text = Utf8Text(new MemoryStream(message, writable: false));
            return (Serialize((o, s) => text.WriteTo(o, s)), []);
        }

        using (parsed)
        {
            MimeEntity body = parsed.Body ?? Utf8Text(new MemoryStream());
            if (!body.Headers.Contains(HeaderId.ContentType))
            {
                body.ContentType.Charset = "utf-8"; // written out: the entity must not depend on the outer message
            }

            return (Serialize((o, s) => body.WriteTo(o, s)), parsed.Headers.Where(h => h.Id != HeaderId.MimeVersion).ToList());
        }
    }

    /// <summary>Reads the CMS of an encrypted S/MIME message or entity.</summary>
    /// <exception cref="UsageException">Not enveloped or authEnveloped S/MIME.</exception>
    public static byte[] ReadEncryptedCms(Stream message)
    {
        using RawMessage raw = MessageReader.Read(message);
        SmimeBodyContent? content = SmimeBodyCodec.TryRead(raw.Header.ToMimeHeaders(), raw.Body)
            ?? throw new UsageException("the message is not encrypted S/MIME (no application/pkcs7-mime enveloped-data)");
        return content.Cms.ToArray();
    }

    /// <summary>Ordinary S/MIME to one certificate (RSA: ktri PKCS#1 v1.5 as every client reads; EC: kari), AES-256-CBC
    /// EnvelopedData as openssl cms -decrypt opens. Built by EnvelopedCms to a throwaway key and then re-keyed for the
    /// certificate by our engine, which (unlike EnvelopedCms on Linux) also writes kari for EC certificates.</summary>
    public static byte[] EncryptTo(ReadOnlySpan<byte> entity, X509Certificate2 certificate)
    {
        using RSA throwaway = RSA.Create(2048);
        var request = new CertificateRequest("CN=securelist throwaway", throwaway, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using X509Certificate2 temp = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5));
        var envelope = new EnvelopedCms(new System.Security.Cryptography.Pkcs.ContentInfo(entity.ToArray()),
            new AlgorithmIdentifier(new Oid("2.16.840.1.101.3.4.1.42"))); // id-aes256-CBC
        envelope.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(System.Security.Cryptography.Pkcs.SubjectIdentifierType.IssuerAndSerialNumber, temp));
        using var key = new ListKey(temp, throwaway);
        RewrapResult result = SessionKeyRewrapper.Rewrap(envelope.Encode(), [key], [Cms.CmsRecipient.FromCertificate(certificate)],
            new CmsRewrapOptions { KeepOtherRecipientInfos = false });
        return result.ContentInfo;
    }

    /// <summary>Signs the entity (SHA-256, signer certificate included) and returns the signed-data S/MIME entity.</summary>
    public static byte[] SignOpaque(ReadOnlySpan<byte> entity, X509Certificate2 signerWithKey)
    {
        var signed = new SignedCms(new System.Security.Cryptography.Pkcs.ContentInfo(entity.ToArray()), detached: false);
        signed.ComputeSignature(Signer(signerWithKey), silent: true);
        using ApplicationPkcs7Mime part = Pkcs7Mime(SecureMimeType.SignedData, signed.Encode());
        return Serialize((o, s) => part.WriteTo(o, s));
    }

    /// <summary>SHA-256, the signer's certificate included (not its chain): what the tools sign with.</summary>
    internal static System.Security.Cryptography.Pkcs.CmsSigner Signer(X509Certificate2 signerWithKey) => new(System.Security.Cryptography.Pkcs.SubjectIdentifierType.IssuerAndSerialNumber, signerWithKey)
    {
        DigestAlgorithm = new Oid("2.16.840.1.101.3.4.2.1"), // SHA-256
        IncludeOption = X509IncludeOption.EndCertOnly,
    };

    /// <summary>Checks a decrypted entity for a signature: opaque (application/pkcs7-mime signed-data) or
    /// multipart/signed (RFC 8551 §3.5.3, what openssl cms -sign writes). Returns the status and the entity to show
    /// (the signed content for opaque signatures, the entity unchanged otherwise).</summary>
    public static (SignatureStatus Status, string Detail, byte[] Content) CheckSignature(byte[] entity)
    {
        MimeEntity parsed;
        try
        {
            parsed = MimeEntity.Load(new MemoryStream(entity, writable: false), persistent: true);
        }
        catch (FormatException)
        {
            return (SignatureStatus.None, "no signature", entity);
        }

        using (parsed)
        {
            try
            {
                if (parsed is ApplicationPkcs7Mime { SecureMimeType: SecureMimeType.SignedData } opaque)
                {
                    var signed = new SignedCms();
                    signed.Decode(Decoded(opaque));
                    signed.CheckSignature(verifySignatureOnly: true);
                    return (SignatureStatus.Verified, Describe(signed), signed.ContentInfo.Content);
                }

                if (TrySplit(parsed, out byte[] signedPart, out byte[] signature))
                {
                    try
                    {
                        var signed = new SignedCms(new System.Security.Cryptography.Pkcs.ContentInfo(signedPart), detached: true);
                        signed.Decode(signature);
                        signed.CheckSignature(verifySignatureOnly: true);
                        return (SignatureStatus.Verified, Describe(signed), entity);
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(signedPart);
                    }
                }
            }
            catch (Exception e) when (e is CryptographicException or FormatException)
            {
                return (SignatureStatus.Invalid, "INVALID signature: " + e.Message.ReplaceLineEndings(" "), entity);
            }
        }

        return (SignatureStatus.None, "no signature", entity);
    }

    /// <summary>
    /// A multipart/signed entity with an S/MIME signature (RFC 1847 §2.1, RFC 8551 §3.5.3) as the bytes the signature
    /// covers (the first part, canonical: MimeKit writes its header fields as they arrived and its content with CRLF) and
    /// the detached SignedData (the second part, decoded). The caller zeroes <paramref name="signedPart"/>.
    /// </summary>
    internal static bool TrySplit(MimeEntity entity, out byte[] signedPart, out byte[] signature)
    {
        signedPart = signature = [];
        if (entity is not MultipartSigned { Count: 2 } multipart || multipart[1] is not MimePart signaturePart
            || multipart.ContentType.Parameters["protocol"]?.ToLowerInvariant() is not ("application/pkcs7-signature" or "application/x-pkcs7-signature"))
        {
            return false;
        }

        signedPart = Serialize((o, s) => multipart[0].WriteTo(o, s));
        signature = Decoded(signaturePart);
        return true;
    }

    /// <summary>The decoded content of a leaf part, in a pinned buffer the caller may zero.</summary>
    internal static byte[] Decoded(MimePart part) => Serialize((_, stream) => part.Content?.DecodeTo(stream));

    /// <summary>
    /// What WRITE produces with <see cref="Canonical"/>, in one pinned array of exactly that length: measured first, so
    /// no growing buffer leaves copies of a key or a plaintext behind, and the caller can zero the only one.
    /// </summary>
    internal static byte[] Serialize(Action<FormatOptions, Stream> write)
    {
        using var measure = new MeasuringStream();
        write(Canonical, measure);
        byte[] bytes = GC.AllocateArray<byte>(checked((int)measure.Length), pinned: true);
        using var output = new MemoryStream(bytes, writable: true);
        write(Canonical, output);
        return bytes;
    }

    private static ApplicationPkcs7Mime Pkcs7Mime(SecureMimeType type, ReadOnlySpan<byte> der)
    {
        var part = new ApplicationPkcs7Mime(type, new MemoryStream(der.ToArray(), writable: false));
        if (type == SecureMimeType.AuthEnvelopedData)
        {
            part.ContentType.Parameters["smime-type"] = "authEnveloped-data"; // RFC 8551 §3.2.2 spells it so
        }

        return part;
    }

    private static TextPart Utf8Text(Stream content)
    {
        var text = new TextPart(TextFormat.Plain) { Content = new MimeContent(content) };
        text.ContentType.Charset = "utf-8";
        return text;
    }

    private static FormatOptions CreateCanonical()
    {
        FormatOptions options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Dos;
        return options;
    }

    private static string Describe(SignedCms signed)
    {
        X509Certificate2? cert = signed.SignerInfos.Count > 0 ? signed.SignerInfos[0].Certificate : null;
        return "verified: signed by " + (cert?.Subject ?? "an unknown signer") + " (signature checked; certificate not chain-validated)";
    }
}

/// <summary>What <c>securelist decrypt</c> found about the sender's signature.</summary>
public enum SignatureStatus
{
    None,
    Verified,
    Invalid,
}
