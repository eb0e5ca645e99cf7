using System.Formats.Asn1;
using System.Security.Cryptography;

namespace MilterSecureList.Cms.Asn1;

/// <summary>The one place where the ways a decoder can fail on hostile bytes become the layer's exception.</summary>
/// <remarks>
/// The decoders read with <see cref="AsnReader"/>, which throws <see cref="AsnContentException"/>; the BCL's X.509 and
/// key importers throw <see cref="CryptographicException"/>; a length that slips past a check shows up as an index or
/// overflow error. Every call from the engines into a decoder goes through <see cref="Decode{TState, TResult}"/>, so
/// no engine, and no layer above, catches an ASN.1 exception type. What a decoder finds well-formed but outside the
/// allow-list, or beyond a limit, it throws as <see cref="CmsRewrapException"/> itself; that passes through here as is.
/// </remarks>
internal static class DecoderBoundary
{
    /// <summary>Run <paramref name="decode"/> over untrusted input. A failure becomes a <see cref="CmsRewrapException"/>
    /// with <paramref name="failure"/> and the one-line message "<paramref name="what"/>: detail".</summary>
    public static TResult Decode<TState, TResult>(TState state, Func<TState, TResult> decode, string what,
        CmsRewrapFailure failure = CmsRewrapFailure.Malformed)
    {
        try
        {
            return decode(state);
        }
        catch (Exception e) when (IsDecoderFailure(e))
        {
            throw new CmsRewrapException(failure, $"{what}: {FirstLine(e.Message)}", e);
        }
    }

    private static bool IsDecoderFailure(Exception e) => e is AsnContentException or CryptographicException
        or IndexOutOfRangeException or ArgumentOutOfRangeException or OverflowException;

    // ArgumentOutOfRangeException appends "Actual value was ..." on a second line; the layer's messages are one line.
    private static string FirstLine(string message)
    {
        int newline = message.IndexOfAny(['\r', '\n']);
        return newline < 0 ? message : message[..newline];
    }
}
