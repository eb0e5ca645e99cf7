namespace MilterSecureList.Cms.Asn1;

/// <summary>Definite-length TLV headers (X.690 §8.1.3) for assembling large outputs directly into one
/// exactly-sized array: an AsnWriter would copy a 50 MB EncryptedContentInfo twice (buffer + Encode()).</summary>
internal static class DerHeader
{
    public static int LengthOfLength(long length) => length switch
    {
        < 0x80 => 1,
        <= 0xFF => 2,
        <= 0xFFFF => 3,
        <= 0xFFFFFF => 4,
        _ => 5,
    };

    /// <summary>Size of a TLV with a one-byte tag and <paramref name="contentLength"/> content bytes.</summary>
    public static long TlvSize(long contentLength) => 1 + LengthOfLength(contentLength) + contentLength;

    public static int Write(Span<byte> destination, byte tag, long contentLength)
    {
        destination[0] = tag;
        int lol = LengthOfLength(contentLength);
        if (lol == 1)
        {
            destination[1] = (byte)contentLength;
            return 2;
        }

        destination[1] = (byte)(0x80 | (lol - 1));
        for (int i = 0; i < lol - 1; i++)
        {
            destination[2 + i] = (byte)(contentLength >> (8 * (lol - 2 - i)));
        }

        return 1 + lol;
    }
}
