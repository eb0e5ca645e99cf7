using System.Diagnostics;

namespace MilterSecureList.Mime;

/// <summary>Why the MIME layer refused a message. One value per failure class, so callers can map it to a verdict.</summary>
public enum MimeErrorReason
{
    /// <summary>The message is not S/MIME enveloped or authEnveloped data, so there is nothing to re-key.</summary>
    NotSmime,

    /// <summary>A character outside the base64 alphabet (RFC 4648 §4) that is not line whitespace.</summary>
    InvalidBase64Character,

    /// <summary>'=' padding in the wrong place, too much of it, or data after it.</summary>
    InvalidBase64Padding,

    /// <summary>The base64 text ended in the middle of a 4-character quantum.</summary>
    TruncatedBase64,

    /// <summary>The header block is larger than the configured limit.</summary>
    HeaderTooLarge,

    /// <summary>A header line is neither a field ("name: value") nor a continuation line.</summary>
    MalformedHeader,

    /// <summary>A Content-Type value that does not follow RFC 2045 §5.1.</summary>
    InvalidContentType,

    /// <summary>A Content-Transfer-Encoding we cannot undo for a CMS body (quoted-printable, x-token).</summary>
    UnsupportedTransferEncoding,

    /// <summary>The decoded CMS body is larger than the configured limit.</summary>
    BodyTooLarge,
}

/// <summary>The one exception type of the MIME layer: a reason plus a one-line message.</summary>
public sealed class MimeFormatException : Exception
{
    public MimeFormatException(MimeErrorReason reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    public MimeFormatException(MimeErrorReason reason, string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = reason;
    }

    public MimeErrorReason Reason { get; }

    // Kept out of the hot loops so they stay small (same pattern as Kestrel's BadHttpRequestException helpers).
    [StackTraceHidden]
    internal static MimeFormatException Create(MimeErrorReason reason, string message) => new(reason, message);
}
