using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Cms;
using MilterSecureList.Mime;

namespace MilterSecureList.Admin.DoubleWrap;

/// <summary>The MIME side of the member and sender tools: S/MIME entities in and out (RFC 8551 §3), ordinary
/// encryption to one certificate, and opaque signing (RFC 8551 §3.5.2, SignedData inside application/pkcs7-mime).</summary>
public static class SmimeEntities
{
    private const string EnvelopedHeaders =
        "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\n"
        + "Content-Transfer-Encoding: base64\r\n"
        + "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n";

    private const string AuthEnvelopedHeaders =
        "Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=\"smime.p7m\"\r\n"
        + "Content-Transfer-Encoding: base64\r\n"
        + "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n";

    private const string SignedHeaders =
        "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n"
        + "Content-Transfer-Encoding: base64\r\n"
        + "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n";

    /// <summary>Writes <paramref name="leadingHeaders"/> (already CRLF-terminated lines), the S/MIME Content-* headers
    /// for <paramref name="cms"/>, the empty line and the base64 body.</summary>
    public static byte[] WriteEncrypted(string leadingHeaders, ReadOnlySpan<byte> cms, bool authEnveloped)
    {
        using var output = new MemoryStream(cms.Length * 4 / 3 + 1024);
        output.Write(Encoding.UTF8.GetBytes(leadingHeaders));
        output.Write(Encoding.ASCII.GetBytes("MIME-Version: 1.0\r\n" + (authEnveloped ? AuthEnvelopedHeaders : EnvelopedHeaders) + "\r\n"));
        SmimeBodyCodec.Write(cms, base64: true, output);
        return output.ToArray();
    }

    /// <summary>Splits a message or entity into its header fields and body; converts bare LF to CRLF (RFC 5322 §2.1,
    /// the canonical form S/MIME signs and encrypts, RFC 8551 §3.1.1).</summary>
    public static (List<string> Fields, byte[] Body) SplitCanonical(ReadOnlySpan<byte> message)
    {
        byte[] canonical = ToCrlf(message);
        if (!StartsWithHeaderField(canonical))
        {
            return ([], canonical); // plain text without a header block: all body
        }

        int end = IndexOfBlankLine(canonical, out int bodyStart);
        string headerText = Encoding.UTF8.GetString(canonical, 0, end);
        var fields = new List<string>();
        foreach (string line in headerText.Split("\r\n"))
        {
            if (line.Length == 0)
            {
                continue;
            }

            if ((line[0] == ' ' || line[0] == '\t') && fields.Count > 0)
            {
                fields[^1] += "\r\n" + line; // folded continuation
            }
            else if (line.Contains(':', StringComparison.Ordinal))
            {
                fields.Add(line);
            }
            else
            {
                throw new UsageException($"header line '{Truncate(line)}' has no colon");
            }
        }

        return (fields, canonical[bodyStart..]);
    }

    /// <summary>The MIME entity of a message to encrypt: its Content-* fields (default text/plain) and body; the
    /// other fields (From, To, Subject, ...) are returned separately to go on the outside.</summary>
    public static (byte[] Entity, string OuterHeaders) ExtractEntity(ReadOnlySpan<byte> message)
    {
        (List<string> fields, byte[] body) = SplitCanonical(message);
        var entity = new StringBuilder();
        var outer = new StringBuilder();
        foreach (string field in fields)
        {
            string name = field[..field.IndexOf(':', StringComparison.Ordinal)].Trim();
            if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
            {
                entity.Append(field).Append("\r\n");
            }
            else if (!name.Equals("MIME-Version", StringComparison.OrdinalIgnoreCase))
            {
                outer.Append(field).Append("\r\n");
            }
        }

        if (entity.Length == 0)
        {
            entity.Append("Content-Type: text/plain; charset=utf-8\r\n");
        }

        entity.Append("\r\n");
        byte[] head = Encoding.UTF8.GetBytes(entity.ToString());
        return ([.. head, .. body], outer.ToString());
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
        envelope.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(SubjectIdentifierType.IssuerAndSerialNumber, temp));
        using var key = new ListKey(temp, throwaway);
        RewrapResult result = SessionKeyRewrapper.Rewrap(envelope.Encode(), [key], [Cms.CmsRecipient.FromCertificate(certificate)],
            new CmsRewrapOptions { KeepOtherRecipientInfos = false });
        return result.ContentInfo;
    }

    /// <summary>Signs the entity (SHA-256, signer certificate included) and returns the signed-data S/MIME entity.</summary>
    public static byte[] SignOpaque(ReadOnlySpan<byte> entity, X509Certificate2 signerWithKey)
    {
        var signed = new SignedCms(new System.Security.Cryptography.Pkcs.ContentInfo(entity.ToArray()), detached: false);
        var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, signerWithKey)
        {
            DigestAlgorithm = new Oid("2.16.840.1.101.3.4.2.1"), // SHA-256
            IncludeOption = X509IncludeOption.EndCertOnly,
        };
        signed.ComputeSignature(signer, silent: true);
        using var output = new MemoryStream();
        output.Write(Encoding.ASCII.GetBytes(SignedHeaders + "\r\n"));
        SmimeBodyCodec.Write(signed.Encode(), base64: true, output);
        return output.ToArray();
    }

    /// <summary>Checks a decrypted entity for a signature: opaque (application/pkcs7-mime signed-data) or
    /// multipart/signed (RFC 8551 §3.5.3, what openssl cms -sign writes). Returns the status and the entity to show
    /// (the signed content for opaque signatures, the entity unchanged otherwise).</summary>
    public static (SignatureStatus Status, string Detail, byte[] Content) CheckSignature(byte[] entity)
    {
        (List<string> fields, byte[] body) = SplitCanonical(entity);
        string? contentType = fields
            .Where(f => f.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase))
            .Select(f => f["Content-Type:".Length..].Replace("\r\n", string.Empty, StringComparison.Ordinal))
            .FirstOrDefault();
        if (contentType is null)
        {
            return (SignatureStatus.None, "no signature", entity);
        }

        if (!MimeKit.ContentType.TryParse(contentType, out MimeKit.ContentType? type))
        {
            return (SignatureStatus.None, "no signature", entity);
        }

        try
        {
            if (type.IsMimeType("application", "pkcs7-mime") && string.Equals(type.Parameters["smime-type"], "signed-data", StringComparison.OrdinalIgnoreCase))
            {
                byte[] der = DecodeBase64Body(body);
                var signed = new SignedCms();
                signed.Decode(der);
                signed.CheckSignature(verifySignatureOnly: true);
                return (SignatureStatus.Verified, Describe(signed), signed.ContentInfo.Content);
            }

            if (type.IsMimeType("multipart", "signed") && type.Boundary is { Length: > 0 } boundary)
            {
                (byte[] signedPart, byte[] signature) = SplitMultipartSigned(body, boundary);
                var signed = new SignedCms(new System.Security.Cryptography.Pkcs.ContentInfo(signedPart), detached: true);
                signed.Decode(signature);
                signed.CheckSignature(verifySignatureOnly: true);
                return (SignatureStatus.Verified, Describe(signed), entity);
            }
        }
        catch (Exception e) when (e is CryptographicException or FormatException or UsageException)
        {
            return (SignatureStatus.Invalid, "INVALID signature: " + e.Message.ReplaceLineEndings(" "), entity);
        }

        return (SignatureStatus.None, "no signature", entity);
    }

    private static string Describe(SignedCms signed)
    {
        X509Certificate2? cert = signed.SignerInfos.Count > 0 ? signed.SignerInfos[0].Certificate : null;
        return "verified: signed by " + (cert?.Subject ?? "an unknown signer") + " (signature checked; certificate not chain-validated)";
    }

    /// <summary>RFC 1847 §2.1: the first part is the bytes between the first delimiter line's CRLF and the CRLF that
    /// precedes the next delimiter; the second part's body is the detached SignedData.</summary>
    internal static (byte[] SignedPart, byte[] Signature) SplitMultipartSigned(byte[] body, string boundary)
    {
        byte[] delimiter = Encoding.ASCII.GetBytes("--" + boundary);
        int first = IndexOfLineStart(body, delimiter, 0);
        if (first < 0)
        {
            throw new UsageException("multipart/signed without its first boundary");
        }

        int partStart = Array.IndexOf(body, (byte)'\n', first) + 1;
        int second = IndexOfLineStart(body, delimiter, partStart);
        if (partStart <= 0 || second < 0)
        {
            throw new UsageException("multipart/signed without a second part");
        }

        byte[] signedPart = body[partStart..(second - 2)];
        int sigStart = Array.IndexOf(body, (byte)'\n', second) + 1;
        int close = IndexOfLineStart(body, delimiter, sigStart);
        byte[] sigEntity = body[sigStart..(close < 0 ? body.Length : close)];
        (_, byte[] sigBody) = SplitCanonical(sigEntity);
        return (signedPart, DecodeBase64Body(sigBody));
    }

    private static int IndexOfLineStart(byte[] data, byte[] delimiter, int from)
    {
        for (int i = data.AsSpan(from).IndexOf(delimiter); i >= 0; )
        {
            int at = from + i;
            if (at == 0 || data[at - 1] == (byte)'\n')
            {
                return at;
            }

            from = at + 1;
            i = data.AsSpan(from).IndexOf(delimiter);
        }

        return -1;
    }

    private static byte[] DecodeBase64Body(byte[] body)
    {
        string text = new(Encoding.ASCII.GetString(body).Where(c => !char.IsWhiteSpace(c)).ToArray());
        return Convert.FromBase64String(text);
    }

    /// <summary>RFC 5322 §3.6.8: a field name is printable US-ASCII except colon, followed by a colon.</summary>
    private static bool StartsWithHeaderField(ReadOnlySpan<byte> data)
    {
        int i = 0;
        while (i < data.Length && data[i] is >= 33 and <= 126 and not (byte)':')
        {
            i++;
        }

        return i > 0 && i < data.Length && data[i] == (byte)':';
    }

    private static byte[] ToCrlf(ReadOnlySpan<byte> data)

    {
        using var output = new MemoryStream(data.Length + data.Length / 32 + 2);
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] == (byte)'\n' && (i == 0 || data[i - 1] != (byte)'\r'))
            {
                output.WriteByte((byte)'\r');
            }

            output.WriteByte(data[i]);
        }

        return output.ToArray();
    }

    private static int IndexOfBlankLine(byte[] data, out int bodyStart)
    {
        if (data.AsSpan().StartsWith("\r\n"u8))
        {
            bodyStart = 2;
            return 0;
        }

        int i = data.AsSpan().IndexOf("\r\n\r\n"u8);
        if (i < 0)
        {
            bodyStart = data.Length;
            return data.Length;
        }

        bodyStart = i + 4;
        return i;
    }

    private static string Truncate(string text) => text.Length > 60 ? text[..60] + "..." : text;
}

/// <summary>What <c>securelist decrypt</c> found about the sender's signature.</summary>
public enum SignatureStatus
{
    None,
    Verified,
    Invalid,
}
