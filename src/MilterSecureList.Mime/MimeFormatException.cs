using System.Diagnostics;

namespace MilterSecureList.Mime;

/// <summary>Why the MIME layer refused a message. One value per failure class, so callers can map it to a verdict.</summary>
public enum MimeErrorReason
{
    /// <summary>The message is not S/MIME enveloped or authEnveloped data, so there is nothing to re-key.</summary>
    NotSmime,

    /// <summary>A character outside the base64 alphabet (RFC 4648 §4) that is not line whitespace.</summary>
    InvalidBase64Character,

    /// <summary>The base64 text ends inside a 4-character group, or its '=' padding is wrong.</summary>
    InvalidBase64End,

    /// <summary>The input does not start with a header field, so it is not a message.</summary>
    MalformedHeader,

    /// <summary>A Content-Transfer-Encoding we cannot undo for a CMS body (quoted-printable, x-uuencode, an unknown token).</summary>
    UnsupportedTransferEncoding,

    /// <summary>The decoded CMS body is larger than the configured limit.</summary>
    BodyTooLarge,

    /// <summary>The header block of a message file is larger than the limit it was read with.</summary>
    HeaderTooLarge,
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
