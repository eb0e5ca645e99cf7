using System.Buffers;
using System.Buffers.Text;
using System.Globalization;

namespace MilterSecureList.Mime;

/// <summary>
/// Incremental base64 decoder for a MIME body (RFC 2045 §6.8, alphabet of RFC 4648 §4). Feed it the body
/// in chunks of any size and split anywhere (milter BODY packets, stream reads), then call <see cref="Complete"/>.
/// Line breaks, spaces and tabs are skipped; any other character outside the alphabet, '=' padding anywhere
/// but the end, or a text that stops mid-quantum is a <see cref="MimeFormatException"/> naming the byte offset.
/// Memory is one fixed scratch buffer, whatever the body size.
/// </summary>
public sealed class Base64BodyDecoder
{
    // Input is handled in slices of this size; the scratch buffer holds one slice plus a carried partial quantum.
    private const int SliceSize = 16 * 1024;
    private const int StreamReadSize = 64 * 1024;

    private static readonly SearchValues<byte> s_alphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"u8);

    private readonly byte[] _chars = new byte[SliceSize + 4];
    private int _pending;        // base64 characters in _chars not decoded yet
    private int _padding;        // '=' characters seen; non-zero means only '=' and white space may follow
    private int _paddingNeeded;  // how many '=' complete the last quantum
    private long _offset;        // body bytes consumed so far, for error messages
    private bool _completed;

    /// <summary>Body bytes consumed so far.</summary>
    public long BytesConsumed => _offset;

    /// <summary>Decoded bytes produced so far.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Upper bound of the bytes <paramref name="encodedLength"/> characters can decode to.</summary>
    public static int GetMaxDecodedLength(int encodedLength) => (encodedLength / 4 * 3) + 3;

    /// <summary>Decodes the next chunk of the body into <paramref name="output"/>.</summary>
    public void Decode(ReadOnlySpan<byte> chunk, IBufferWriter<byte> output)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        while (!chunk.IsEmpty)
        {
            int take = Math.Min(chunk.Length, SliceSize);
            DecodeSlice(chunk[..take], output);
            chunk = chunk[take..];
        }
    }

    /// <summary>Ends the body: checks the last quantum and its padding, and writes its bytes.</summary>
    public void Complete(IBufferWriter<byte> output)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        _completed = true;
        if (_padding == 0)
        {
            if (_pending != 0)
            {
                throw MimeFormatException.Create(
                    MimeErrorReason.TruncatedBase64,
                    $"base64 body ends in the middle of a 4-character group ({_pending} character(s) left over at body offset {_offset})");
            }

            return;
        }

        if (_padding != _paddingNeeded)
        {
            throw MimeFormatException.Create(
                MimeErrorReason.InvalidBase64Padding,
                $"base64 body ends with {_padding} '=' where {_paddingNeeded} are needed (body offset {_offset})");
        }

        Span<byte> last = stackalloc byte[4];
        _chars.AsSpan(0, _pending).CopyTo(last);
        last[_pending..].Fill((byte)'=');
        DecodeQuanta(last, output);
        _pending = 0;
    }

    /// <summary>Decodes a whole base64 body stream into <paramref name="output"/>.</summary>
    public static long Decode(Stream input, IBufferWriter<byte> output)
    {
        var decoder = new Base64BodyDecoder();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(StreamReadSize);
        try
        {
            int read;
            while ((read = input.Read(buffer, 0, StreamReadSize)) > 0)
            {
                decoder.Decode(buffer.AsSpan(0, read), output);
            }

            decoder.Complete(output);
            return decoder.BytesWritten;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Decodes a whole base64 body stream into another stream.</summary>
    public static long Decode(Stream input, Stream output)
    {
        var writer = new StreamBufferWriter(output);
        long written = Decode(input, writer);
        writer.Flush();
        return written;
    }

    /// <summary>Decodes a whole base64 body held in memory (tests, small bodies).</summary>
    public static byte[] Decode(ReadOnlySpan<byte> body)
    {
        var writer = new ArrayBufferWriter<byte>(GetMaxDecodedLength(body.Length));
        var decoder = new Base64BodyDecoder();
        decoder.Decode(body, writer);
        decoder.Complete(writer);
        return writer.WrittenSpan.ToArray();
    }

    private void DecodeSlice(ReadOnlySpan<byte> slice, IBufferWriter<byte> output)
    {
        int i = 0;
        while (i < slice.Length)
        {
            if (_padding > 0)
            {
                ConsumePadding(slice[i..], _offset + i);
                break;
            }

            // Vectorised: copy the run of alphabet characters, then look at what stopped it.
            ReadOnlySpan<byte> rest = slice[i..];
            int stop = rest.IndexOfAnyExcept(s_alphabet);
            int run = stop < 0 ? rest.Length : stop;
            rest[..run].CopyTo(_chars.AsSpan(_pending));
            _pending += run;
            i += run;
            if (stop < 0)
            {
                break;
            }

            byte b = slice[i];
            if (IsWhiteSpace(b))
            {
                // Line ends come in pairs (CRLF); skip the whole run here rather than one search per byte.
                do
                {
                    i++;
                }
                while (i < slice.Length && IsWhiteSpace(slice[i]));
            }
            else if (b == (byte)'=')
            {
                // RFC 4648 §3.2: "xx==" or "xxx=" only, so 2 or 3 characters must precede the padding in this quantum.
                int inQuantum = _pending % 4;
                if (inQuantum < 2)
                {
                    throw MimeFormatException.Create(
                        MimeErrorReason.InvalidBase64Padding,
                        $"misplaced base64 padding '=' at body offset {_offset + i}");
                }

                _paddingNeeded = 4 - inQuantum;
                _padding = 1;
                i++;
            }
            else
            {
                throw InvalidCharacter(b, _offset + i);
            }
        }

        _offset += slice.Length;

        int whole = _pending & ~3;
        if (whole > 0)
        {
            DecodeQuanta(_chars.AsSpan(0, whole), output);
            _chars.AsSpan(whole, _pending - whole).CopyTo(_chars);
            _pending -= whole;
        }
    }

    private void ConsumePadding(ReadOnlySpan<byte> rest, long offset)
    {
        for (int j = 0; j < rest.Length; j++)
        {
            byte b = rest[j];
            if (b == (byte)'=')
            {
                if (++_padding > _paddingNeeded)
                {
                    throw MimeFormatException.Create(
                        MimeErrorReason.InvalidBase64Padding,
                        $"too much base64 padding at body offset {offset + j}");
                }
            }
            else if (!IsWhiteSpace(b))
            {
                throw MimeFormatException.Create(
                    MimeErrorReason.InvalidBase64Padding,
                    $"data after base64 padding at body offset {offset + j} (byte {Describe(b)})");
            }
        }
    }

    private void DecodeQuanta(ReadOnlySpan<byte> chars, IBufferWriter<byte> output)
    {
        Span<byte> destination = output.GetSpan(chars.Length / 4 * 3);
        OperationStatus status = Base64.DecodeFromUtf8(chars, destination, out _, out int written, isFinalBlock: true);
        if (status != OperationStatus.Done)
        {
            // Unreachable after the alphabet check above, unless padding bits are rejected; keep it typed anyway.
            throw MimeFormatException.Create(
                MimeErrorReason.InvalidBase64Character,
                $"base64 decoding failed ({status}) before body offset {_offset}");
        }

        output.Advance(written);
        BytesWritten += written;
    }

    private static bool IsWhiteSpace(byte b) => b is (byte)'\r' or (byte)'\n' or (byte)' ' or (byte)'\t';

    private static MimeFormatException InvalidCharacter(byte b, long offset) =>
        MimeFormatException.Create(
            MimeErrorReason.InvalidBase64Character,
            $"invalid base64 character {Describe(b)} at body offset {offset}");

    private static string Describe(byte b) =>
        b is >= 0x21 and < 0x7F
            ? string.Create(CultureInfo.InvariantCulture, $"'{(char)b}' (0x{b:X2})")
            : string.Create(CultureInfo.InvariantCulture, $"0x{b:X2}");
}
