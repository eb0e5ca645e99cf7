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

    /// <summary>The new body in the transfer encoding the headers announce (base64 at 76 columns with CRLF, RFC 2045
    /// §6.8, for nearly every client), encoded while it is sent; <paramref name="contentInfo"/> is not copied.</summary>
    public Stream EncodeBody(byte[] contentInfo) => SmimeBodyCodec.Encode(contentInfo, Content.BodyEncoding);
}
