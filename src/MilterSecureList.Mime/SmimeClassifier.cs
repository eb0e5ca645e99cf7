using MimeKit;
using MimeKit.Utils;

namespace MilterSecureList.Mime;

/// <summary>What an S/MIME message carries, judged from its top-level headers only (RFC 8551 §3.2).</summary>
public enum SmimeKind
{
    /// <summary>Not S/MIME (or no usable Content-Type, which RFC 2045 §5.2 reads as text/plain).</summary>
    NotSmime,

    /// <summary><c>smime-type=enveloped-data</c>.</summary>
    EnvelopedData,

    /// <summary><c>smime-type=authEnveloped-data</c> (RFC 8551 §3.2.2, S/MIME 4.0).</summary>
    AuthEnvelopedData,

    /// <summary>
    /// pkcs7-mime without smime-type but with a <c>.p7m</c> name or filename: old agents send this.
    /// The headers cannot tell enveloped from authEnveloped; the caller must read the CMS ContentInfo's contentType.
    /// </summary>
    EnvelopedOrAuthEnveloped,

    /// <summary>Signed, not encrypted (<c>smime-type=signed-data</c> or multipart/signed).</summary>
    SignedData,

    /// <summary><c>smime-type=compressed-data</c> (RFC 3274).</summary>
    CompressedData,

    /// <summary>pkcs7-mime with an smime-type or name we do not recognise (e.g. certs-only).</summary>
    Unknown,
}

/// <summary>The verdict of <see cref="SmimeClassifier"/>.</summary>
/// <param name="Kind">What the headers say the body is.</param>
/// <param name="TransferEncoding">The body's Content-Transfer-Encoding as MimeKit names it:
/// <see cref="ContentEncoding.Default"/> when the field is absent, null when it holds a token MimeKit does not know.</param>
/// <param name="ContentType">The top-level Content-Type as MimeKit parsed it, if there was a usable one.</param>
/// <param name="Reason">One line for logs saying why this kind was chosen.</param>
public sealed record SmimeClassification(SmimeKind Kind, ContentEncoding? TransferEncoding, ContentType? ContentType, string Reason)
{
    /// <summary>True when the body is (probably) enveloped or authEnveloped CMS, i.e. something the list can re-key.</summary>
    public bool IsEncrypted => Kind is SmimeKind.EnvelopedData or SmimeKind.AuthEnvelopedData or SmimeKind.EnvelopedOrAuthEnveloped;
}

/// <summary>
/// Recognises S/MIME messages from their top-level header fields. MimeKit parses the values (RFC 2045 §5.1 with
/// comments and quoted strings, RFC 2231 continuations and charsets, folding with CRLF or the bare LF a milter
/// gets); this type only applies RFC 8551's rules to what it parsed.
/// </summary>
public static class SmimeClassifier
{
    /// <summary>Classifies a message from its header fields (any order; names case-insensitive; first occurrence wins).</summary>
    public static SmimeClassification Classify(IEnumerable<MimeHeader> headers)
    {
        string? contentType = null;
        string? transferEncoding = null;
        string? disposition = null;
        foreach (MimeHeader header in headers)
        {
            if (contentType is null && header.Is("Content-Type"))
            {
                contentType = header.Value;
            }
            else if (transferEncoding is null && header.Is("Content-Transfer-Encoding"))
            {
                transferEncoding = header.Value;
            }
            else if (disposition is null && header.Is("Content-Disposition"))
            {
                disposition = header.Value;
            }
        }

        return Classify(contentType, transferEncoding, disposition);
    }

    /// <summary>Classifies a header block read by <see cref="MessageReader"/>.</summary>
    public static SmimeClassification Classify(HeaderList headers) => Classify(headers.ToMimeHeaders());

    /// <summary>Classifies from the three header values that matter; null means the field is absent.</summary>
    public static SmimeClassification Classify(string? contentType, string? contentTransferEncoding, string? contentDisposition)
    {
        ContentEncoding? encoding = ParseTransferEncoding(contentTransferEncoding);
        if (contentType is null)
        {
            return new(SmimeKind.NotSmime, encoding, null, "no Content-Type header (text/plain by RFC 2045 §5.2)");
        }

        if (!ContentType.TryParse(ParserOptions.Default, contentType, out ContentType? type))
        {
            return new(SmimeKind.NotSmime, encoding, null, $"unparsable Content-Type '{Abbreviate(contentType)}'");
        }

        ContentDisposition? parsedDisposition = null;
        if (contentDisposition is not null)
        {
            _ = ContentDisposition.TryParse(ParserOptions.Default, contentDisposition, out parsedDisposition);
        }

        string? fileName = type.Name ?? parsedDisposition?.FileName;
        string mimeType = type.MimeType.ToLowerInvariant();

        if (type.IsMimeType("application", "pkcs7-mime") || type.IsMimeType("application", "x-pkcs7-mime"))
        {
            if (!type.Parameters.TryGetValue("smime-type", out string? smimeType))
            {
                return ClassifyByFileName(type, encoding, fileName, $"{mimeType} without smime-type");
            }

            // smime-type is a token (RFC 8551 §3.2.2). MimeKit reads unquoted values leniently, up to the ';', so a
            // comment after the token ("enveloped-data (from Outlook)") arrives as part of the value: cut it off.
            string token = smimeType.Trim();
            int end = token.AsSpan().IndexOfAny(" \t(");
            SmimeKind kind = (end < 0 ? token : token[..end]).ToLowerInvariant() switch
            {
                "enveloped-data" => SmimeKind.EnvelopedData,
                "authenveloped-data" => SmimeKind.AuthEnvelopedData,
                "signed-data" => SmimeKind.SignedData,
                "compressed-data" => SmimeKind.CompressedData,
                _ => SmimeKind.Unknown,
            };
            return new(kind, encoding, type, $"{mimeType}; smime-type={smimeType}");
        }

        if (type.IsMimeType("multipart", "signed"))
        {
            return new(SmimeKind.SignedData, encoding, type, "multipart/signed");
        }

        // RFC 8551 §3.2.1: some agents label CMS as application/octet-stream; the .p7m name is the signal.
        if (type.IsMimeType("application", "octet-stream") && HasExtension(fileName, ".p7m"))
        {
            return new(SmimeKind.EnvelopedOrAuthEnveloped, encoding, type, $"application/octet-stream named '{fileName}'");
        }

        return new(SmimeKind.NotSmime, encoding, type, $"Content-Type is {mimeType}");
    }

    /// <summary>The Content-Transfer-Encoding (RFC 2045 §6.1) as MimeKit names it: <see cref="ContentEncoding.Default"/>
    /// for an absent field, null for a token that is not one of RFC 2045's (or MimeKit's uuencode).</summary>
    public static ContentEncoding? ParseTransferEncoding(string? value)
    {
        if (value is null)
        {
            return ContentEncoding.Default;
        }

        return MimeUtils.TryParse(value, out ContentEncoding encoding) ? encoding : null;
    }

    internal static string Abbreviate(string value)
    {
        string oneLine = value.Replace('\r', ' ').Replace('\n', ' ');
        return oneLine.Length <= 80 ? oneLine : oneLine[..77] + "...";
    }

    private static SmimeClassification ClassifyByFileName(ContentType type, ContentEncoding? encoding, string? fileName, string what)
    {
        // RFC 8551 §3.2.1 file extensions: .p7m enveloped/signed-data, .p7c certs-only, .p7z compressed-data.
        if (HasExtension(fileName, ".p7m"))
        {
            return new(SmimeKind.EnvelopedOrAuthEnveloped, encoding, type, $"{what}, named '{fileName}'");
        }

        if (HasExtension(fileName, ".p7z"))
        {
            return new(SmimeKind.CompressedData, encoding, type, $"{what}, named '{fileName}'");
        }

        return new(SmimeKind.Unknown, encoding, type, fileName is null ? $"{what} and without name" : $"{what}, named '{fileName}'");
    }

    private static bool HasExtension(string? fileName, string extension) =>
        fileName is not null && fileName.Trim().EndsWith(extension, StringComparison.OrdinalIgnoreCase);
}
