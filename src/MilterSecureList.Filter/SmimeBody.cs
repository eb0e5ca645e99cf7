using MilterSecureList.Mime;

namespace MilterSecureList.Filter;

/// <summary>
/// The S/MIME body of a message to a list: the top-level entity must be application/pkcs7-mime enveloped or
/// authEnveloped data (RFC 8551 §3.3). Holds the decoded ContentInfo and writes the re-keyed one back in the
/// same transfer encoding, leaving every header as it was.
/// </summary>
internal sealed class SmimeBody
{
    private SmimeBody(SmimeBodyContent content) => Content = content;

    public SmimeBodyContent Content { get; }

    public ReadOnlyMemory<byte> ContentInfo => Content.Cms;

    /// <summary>Null when the headers do not announce encrypted S/MIME (plaintext, signed only, multipart...).</summary>
    /// <exception cref="MimeFormatException">announced as S/MIME, but the body is badly encoded or too large.</exception>
    public static SmimeBody? TryRead(IReadOnlyList<HeaderField> headers, Stream body, long maxCmsBytes)
    {
        SmimeBodyContent? content = SmimeBodyCodec.TryRead(headers.Select(h => new MimeHeader(h.Name, h.Value)), body, maxCmsBytes);
        return content is null ? null : new SmimeBody(content);
    }

    /// <summary>The new body: base64 at 76 columns with CRLF (RFC 2045 §6.8), encoded while it is sent, or the
    /// DER as it is for binary bodies. Neither copies <paramref name="contentInfo"/>.</summary>
    public Stream EncodeBody(byte[] contentInfo) =>
        Content.IsBase64 ? new Base64LineReadStream(contentInfo) : new MemoryStream(contentInfo, writable: false);
}
