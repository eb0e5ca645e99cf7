using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace MilterSecureList.Cms;

/// <summary>Why a message could not be re-wrapped. The filter maps each to a configured action.</summary>
public enum CmsRewrapFailure
{
    /// <summary>The ContentInfo is not EnvelopedData or AuthEnvelopedData.</summary>
    NotEnvelopedData,
    /// <summary>No RecipientInfo names one of the list's certificates.</summary>
    NotForThisList,
    /// <summary>The encoding is broken (truncated, garbled, wrong structure, trailing data).</summary>
    Malformed,
    /// <summary>Well-formed, but an algorithm or structure outside the allow-list.</summary>
    UnsupportedAlgorithm,
    /// <summary>A limit was exceeded (size, nesting, number of RecipientInfos).</summary>
    LimitExceeded,
    /// <summary>A caller-side problem: no list keys, no members, unusable certificate.</summary>
    InvalidArgument,
    /// <summary>Decryption failed on the reading side (member or double-wrap tool only; never in the milter's
    /// list-key path, which continues with a random key instead).</summary>
    DecryptionFailed,
}

/// <summary>The single exception type of the CMS layer; <see cref="Exception.Message"/> is one clear line
/// that never contains key material.</summary>
public sealed class CmsRewrapException : Exception
{
    public CmsRewrapException()
        : this(CmsRewrapFailure.Malformed, "CMS error")
    {
    }

    public CmsRewrapException(string message)
        : this(CmsRewrapFailure.Malformed, message)
    {
    }

    public CmsRewrapException(string message, Exception innerException)
        : this(CmsRewrapFailure.Malformed, message, innerException)
    {
    }

    public CmsRewrapException(CmsRewrapFailure reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
    }

    public CmsRewrapFailure Reason { get; }

    [DoesNotReturn]
    [StackTraceHidden]
    internal static void Throw(CmsRewrapFailure reason, string message, Exception? inner = null) =>
        throw new CmsRewrapException(reason, message, inner);

    [DoesNotReturn]
    [StackTraceHidden]
    internal static void Malformed(string message, Exception? inner = null) =>
        throw new CmsRewrapException(CmsRewrapFailure.Malformed, message, inner);

    [DoesNotReturn]
    [StackTraceHidden]
    internal static void Unsupported(string message) =>
        throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, message);
}
