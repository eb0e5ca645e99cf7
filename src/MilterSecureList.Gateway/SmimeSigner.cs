using System.Buffers;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Cms;
using MimeKit;
using CmsRecipient = MilterSecureList.Cms.CmsRecipient;

namespace MilterSecureList.Gateway;

/// <summary>A MIME entity as header fields and body bytes (CRLF line ends).</summary>
public sealed record MimeEntityBytes(IReadOnlyList<GatewayHeader> Headers, byte[] Body)
{
    /// <summary>Headers, empty line, body: the bytes that are signed or encrypted.</summary>
    public byte[] ToBytes()
    {
        // One array of the final size: entities are the size of the message (docs/design.md, "Gateway performance").
        var parts = new byte[Headers.Count + 2][];
        for (int i = 0; i < Headers.Count; i++)
        {
            parts[i] = Encoding.UTF8.GetBytes(MessageText.HeaderLine(Headers[i]));
        }

        parts[^2] = "\r\n"u8.ToArray();
        parts[^1] = Body;
        return MessageText.Concat(parts);
    }

    public static MimeEntityBytes Parse(ReadOnlySpan<byte> entity)
    {
        (List<GatewayHeader> headers, int bodyOffset) = MessageText.SplitEntity(entity);
        return new MimeEntityBytes(headers, entity[bodyOffset..].ToArray());
    }
}

/// <summary>
/// Signs and encrypts MIME entities for a gateway user. MimeKit brings the entity into a form that survives
/// transport (7-bit, CRLF: RFC 8551 §3.1.1-3.1.2); the CMS objects are made by the project's own SignedData writer
/// (<see cref="SignedDataWriter"/>: one hash, the signed attributes, one signature) and its CMS encryptor
/// (EnvelopedData or AuthEnvelopedData, or <see cref="CmsCbcEnvelope"/> in one pass), all on OpenSSL.
/// </summary>
public static class SmimeSigner
{
    private const string Sha256Oid = "2.16.840.1.101.3.4.2.1";

    /// <summary>The entity transformed for signing: 7-bit transfer encodings, CRLF, serialised by MimeKit.</summary>
    public static byte[] Canonicalize(MimeEntityBytes entity)
    {
        List<GatewayHeader> headers = WithContentType(entity.Headers);

        // Plain 7-bit text in short lines is already in the form MimeKit would write: its bytes are signed as they
        // are, without parsing and re-serialising the whole body (docs/design.md, "Gateway performance").
        return IsSevenBitPlainText(headers, entity.Body)
            ? new MimeEntityBytes(headers, entity.Body).ToBytes()
            : CanonicalizeWithMimeKit(headers, entity.Body);
    }

    /// <summary>The entity's header fields when it is signed exactly as it is (see <see cref="Canonicalize"/>), else null.</summary>
    public static List<GatewayHeader>? AlreadyCanonical(MimeEntityBytes entity)
    {
        List<GatewayHeader> headers = WithContentType(entity.Headers);
        return IsSevenBitPlainText(headers, entity.Body) ? headers : null;
    }

    private static List<GatewayHeader> WithContentType(IReadOnlyList<GatewayHeader> entityHeaders)
    {
        var headers = entityHeaders.ToList();
        if (!headers.Any(h => string.Equals(h.Name, "Content-Type", StringComparison.OrdinalIgnoreCase)))
        {
            // RFC 2045 §5.2 default, made explicit: the signed entity must not depend on the outer message.
            headers.Insert(0, new GatewayHeader("Content-Type", "text/plain; charset=us-ascii"));
        }

        return headers;
    }

    /// <summary>
    /// A single text/plain entity, 7bit (or no transfer encoding), ASCII header fields, and a body of printable
    /// ASCII (and tabs) in CRLF lines of at most 76 octets, none ending in white space or starting with "From ":
    /// nothing that RFC 8551 §3.1 or MimeKit's preparation for a 7-bit transport would change.
    /// </summary>
    internal static bool IsSevenBitPlainText(IReadOnlyList<GatewayHeader> headers, ReadOnlySpan<byte> body)
    {
        const int MaxLine = 76;
        int types = 0;
        foreach (GatewayHeader header in headers)
        {
            if (!IsPrintableAscii(header.Name) || !IsPrintableAscii(header.Value))
            {
                return false;
            }

            if (string.Equals(header.Name, "Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                types++;
                string value = MessageText.Unfold(header.Value);
                if (!value.StartsWith("text/plain", StringComparison.OrdinalIgnoreCase) || (value.Length > 10 && value[10] is not (';' or ' ' or '\t')))
                {
                    return false;
                }
            }
            else if (string.Equals(header.Name, "Content-Transfer-Encoding", StringComparison.OrdinalIgnoreCase)
                && !string.Equals(MessageText.Unfold(header.Value), "7bit", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        if (types != 1)
        {
            return false;
        }

        while (!body.IsEmpty)
        {
            int end = body.IndexOf("\r\n"u8);
            if (end < 0 || end > MaxLine)
            {
                return false; // a long line, or a last line without CRLF
            }

            ReadOnlySpan<byte> line = body[..end];
            if (line.ContainsAnyExcept(s_printable) || (line.Length > 0 && line[^1] is (byte)' ' or (byte)'\t') || line.StartsWith("From "u8))
            {
                return false;
            }

            body = body[(end + 2)..];
        }

        return true;
    }

    private static readonly System.Buffers.SearchValues<byte> s_printable = System.Buffers.SearchValues.Create(
        [(byte)'\t', .. Enumerable.Range(0x20, 0x7f - 0x20).Select(b => (byte)b)]);

    private static bool IsPrintableAscii(string text)
    {
        foreach (char c in text)
        {
            if (c is not ('\t' or '\r' or '\n' or (>= ' ' and < '\x7f')))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>What MimeKit makes of the entity when it prepares it for a 7-bit transport.</summary>
    internal static byte[] CanonicalizeWithMimeKit(List<GatewayHeader> headers, byte[] body)
    {
        using var input = new MemoryStream(new MimeEntityBytes(headers, body).ToBytes());
        MimeEntity parsed = MimeEntity.Load(input);
        parsed.Prepare(EncodingConstraint.SevenBit, 78);
        FormatOptions format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        using var output = new MemoryStream();
        parsed.WriteTo(format, output);
        return MessageText.ToCrlf(output.ToArray());
    }

    /// <summary>A detached or encapsulating CMS SignedData over CONTENT (SHA-256, signing time, our capabilities).
    /// KEY is RSA (sha256WithRSAEncryption) or ECDSA (ecdsa-with-SHA256, RFC 5753 §2.1.1).</summary>
    public static byte[] CreateSignedData(ReadOnlySpan<byte> content, X509Certificate2 certificate, AsymmetricAlgorithm key, IReadOnlyList<byte[]> chain, DateTimeOffset now, bool detached) =>
        SignedDataWriter.Write(content, certificate, key, chain, now, detached);

    /// <summary>The same SignedData made by .NET's SignedCms: the reference the tests hold the writer to.</summary>
    internal static byte[] CreateSignedDataWithSignedCms(ReadOnlySpan<byte> content, X509Certificate2 certificate, AsymmetricAlgorithm key, IReadOnlyList<byte[]> chain, DateTimeOffset now, bool detached)
    {
        var cms = new SignedCms(new ContentInfo(content.ToArray()), detached);
        var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, certificate, key)
        {
            DigestAlgorithm = new Oid(Sha256Oid),
            IncludeOption = X509IncludeOption.EndCertOnly,
        };
        foreach (byte[] der in chain)
        {
            signer.Certificates.Add(X509CertificateLoader.LoadCertificate(der));
        }

        signer.SignedAttributes.Add(new Pkcs9SigningTime(now.UtcDateTime));
        signer.SignedAttributes.Add(new AsnEncodedData(SmimeCapabilities.AttributeOid, SmimeCapabilities.OursFor(key)));
        cms.ComputeSignature(signer, silent: true);
        return cms.Encode();
    }

    /// <summary>multipart/signed (RFC 8551 §3.5.3): the canonical entity as first part, the signature as second.</summary>
    public static MimeEntityBytes MultipartSigned(byte[] canonical, byte[] signature)
    {
        var frame = new MultipartSignedFrame(signature);
        return new MimeEntityBytes([frame.ContentType], MessageText.Concat(frame.Before, canonical, frame.After));
    }

    /// <summary>
    /// A canonical entity (HEADERS, BODY: see <see cref="AlreadyCanonical"/>) signed as multipart/signed and that
    /// encrypted with AES-256-CBC to RECIPIENTS, as application/pkcs7-mime: what <see cref="MultipartSigned"/>,
    /// <see cref="MimeEntityBytes.ToBytes"/>, <see cref="CmsEncryptor.Encrypt"/> and <see cref="Pkcs7Mime"/> make one
    /// after another, with the entity hashed in pieces, assembled once and encrypted in place in pooled buffers: the
    /// only new message-sized array is the base64 body (docs/design.md, "Gateway performance").
    /// </summary>
    public static MimeEntityBytes SignedAndEnveloped(IReadOnlyList<GatewayHeader> headers, byte[] body, X509Certificate2 certificate, AsymmetricAlgorithm key, IReadOnlyList<byte[]> chain, DateTimeOffset now, IReadOnlyList<CmsRecipient> recipients)
    {
        byte[] canonicalHeaders = HeaderBlock(headers);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            hash.AppendData(canonicalHeaders);
            hash.AppendData(body);
            hash.GetHashAndReset(digest);
        }

        var frame = new MultipartSignedFrame(SignedDataWriter.WriteDetached(digest, certificate, key, chain, now));
        byte[] outerHeaders = HeaderBlock([frame.ContentType]);
        int length = outerHeaders.Length + frame.Before.Length + canonicalHeaders.Length + body.Length + frame.After.Length;
        byte[] entity = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            int o = 0;
            foreach (byte[] part in (ReadOnlySpan<byte[]>)[outerHeaders, frame.Before, canonicalHeaders, body, frame.After])
            {
                part.CopyTo(entity, o);
                o += part.Length;
            }

            using var envelope = new CmsCbcEnvelope(recipients);
            byte[] der = ArrayPool<byte>.Shared.Rent(envelope.Length(length));
            try
            {
                int written = envelope.Write(entity.AsSpan(0, length), der);
                return Pkcs7Mime(der.AsSpan(0, written), "enveloped-data");
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(der);
            }
        }
        finally
        {
            // The plaintext goes back to a shared pool: cleared first.
            ArrayPool<byte>.Shared.Return(entity, clearArray: true);
        }
    }

    /// <summary>Header lines and the empty line after them.</summary>
    private static byte[] HeaderBlock(IReadOnlyList<GatewayHeader> headers) =>
        Encoding.UTF8.GetBytes(string.Concat(headers.Select(MessageText.HeaderLine)) + "\r\n");

    /// <summary>multipart/signed around a canonical entity: the Content-Type, what comes before the entity (preamble
    /// and first delimiter), and after it (the signature part and the close delimiter).</summary>
    private sealed class MultipartSignedFrame
    {
        public MultipartSignedFrame(byte[] signature)
        {
            string boundary = "=_smime_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            ContentType = new GatewayHeader("Content-Type", $"multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\n\tboundary=\"{boundary}\"");
            Before = Encoding.ASCII.GetBytes($"This is a cryptographically signed message in MIME format.\r\n\r\n--{boundary}\r\n");
            After = MessageText.Concat(
                Encoding.ASCII.GetBytes($"\r\n--{boundary}\r\n"),
                "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\nContent-Description: S/MIME Cryptographic Signature\r\n\r\n"u8.ToArray(),
                MessageText.Base64Lines(signature),
                Encoding.ASCII.GetBytes($"\r\n--{boundary}--\r\n"));
        }

        public GatewayHeader ContentType { get; }

        public byte[] Before { get; }

        public byte[] After { get; }
    }

    /// <summary>application/pkcs7-mime with base64 CMS content (RFC 8551 §3.2).</summary>
    public static MimeEntityBytes Pkcs7Mime(ReadOnlySpan<byte> cms, string smimeType) => new(
        [
            new GatewayHeader("Content-Type", $"application/pkcs7-mime; smime-type={smimeType}; name=\"smime.p7m\""),
            new GatewayHeader("Content-Transfer-Encoding", "base64"),
            new GatewayHeader("Content-Disposition", "attachment; filename=\"smime.p7m\""),
        ],
        MessageText.Base64Lines(cms));
}
