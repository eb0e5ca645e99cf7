using System.Buffers;
using System.Globalization;
using MimeKit.IO.Filters;

namespace MilterSecureList.Mime;

/// <summary>
/// Passes a base64 body through unchanged and refuses it at the first byte that is neither in the base64 alphabet
/// (RFC 4648 §4) nor line white space. MimeKit's decoder skips such bytes silently; a post with them is damaged, and
/// re-encoding what is left would deliver ciphertext no member can open, so the sender gets a clear refusal instead.
/// Runs before <see cref="DecoderFilter"/> in the chain; one vectorised scan per block.
/// </summary>
internal sealed class Base64AlphabetFilter : IMimeFilter
{
    private static readonly SearchValues<byte> s_allowed =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n\t "u8);

    private long _offset;

    public byte[] Filter(byte[] input, int startIndex, int length, out int outputIndex, out int outputLength)
    {
        int bad = input.AsSpan(startIndex, length).IndexOfAnyExcept(s_allowed);
        if (bad >= 0)
        {
            byte b = input[startIndex + bad];
            string what = b is >= 0x21 and < 0x7F
                ? string.Create(CultureInfo.InvariantCulture, $"'{(char)b}' (0x{b:X2})")
                : string.Create(CultureInfo.InvariantCulture, $"0x{b:X2}");
            throw MimeFormatException.Create(MimeErrorReason.InvalidBase64Character, $"invalid base64 character {what} at body offset {_offset + bad}");
        }

        _offset += length;
        outputIndex = startIndex;
        outputLength = length;
        return input;
    }

    public byte[] Flush(byte[] input, int startIndex, int length, out int outputIndex, out int outputLength) =>
        Filter(input, startIndex, length, out outputIndex, out outputLength);

    public void Reset() => _offset = 0;
}
