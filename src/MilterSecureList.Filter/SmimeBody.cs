using MilterSecureList.Mime;

namespace MilterSecureList.Filter;

/// <summary>
/// The S/MIME body of a message to a list: the top-level entity must be application/pkcs7-mime enveloped or
/// authEnveloped data (RFC 8551 §3.3). Holds the decoded ContentInfo and writes the re-keyed one back in the
/// same transfer encoding, leaving every header as it was.
/// </summary>
internal sealed class SmimeBody
{
    private SmimeBody(ReadOnlyMemory<byte> contentInfo, bool base64)
    {
        ContentInfo = contentInfo;
        IsBase64 = base64;
    }

    public ReadOnlyMemory<byte> ContentInfo { get; }

    public bool IsBase64 { get; }

    /// <summary>Null when the message is not S/MIME enveloped data (plaintext, signed only, multipart...).</summary>
    public static SmimeBody? TryRead(IReadOnlyList<HeaderField> headers, Stream body)
    {
        throw new NotImplementedException("wired at integration with the Mime layer");
    }

    /// <summary>The new body: base64 at 76 columns with CRLF (RFC 2045 §6.8), or the DER as it is for binary.</summary>
    public Stream EncodeBody(ReadOnlyMemory<byte> contentInfo)
    {
        throw new NotImplementedException("wired at integration with the Mime layer");
    }
}
