using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using MimeKit.IO.Filters;

namespace MilterSecureList.Mime;

/// <summary>
/// The list filter's base64 step, as MimeKit filters: decoding the spooled body into the CMS and encoding the re-keyed
/// CMS into the replacement body. MimeKit's own base64 filters decode a byte at a time; on a 1 MB post that cost more
/// than the 5% the design allows on the list benchmark (figures in docs/design.md), so this one step uses the BCL's
/// vectorised <see cref="Base64"/> instead. Everything else about the body stays MimeKit's.
/// </summary>
internal static class Base64Alphabet
{
    public static readonly SearchValues<byte> Characters =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"u8);

    public static readonly SearchValues<byte> LineWhiteSpace = SearchValues.Create("\r\n\t "u8);

    public static readonly SearchValues<byte> PaddingOrWhiteSpace = SearchValues.Create("=\r\n\t "u8);

    public static string Describe(byte b) =>
        b is >= 0x21 and < 0x7F
            ? string.Create(CultureInfo.InvariantCulture, $"'{(char)b}' (0x{b:X2})")
            : string.Create(CultureInfo.InvariantCulture, $"0x{b:X2}");
}

/// <summary>
/// Decodes a base64 body (RFC 2045 §6.8) strictly: line white space is skipped, any other byte outside the alphabet
/// (RFC 4648 §4), misplaced padding or a body that ends inside a 4-character group is a <see cref="MimeFormatException"/>
/// with the body offset. A damaged post is refused rather than re-keyed into ciphertext no member can open.
/// </summary>
internal sealed class Base64DecoderFilter : IMimeFilter
{
    private byte[] _chars = new byte[64]; // alphabet characters (and padding) not decoded yet
    private int _pending;
    private bool _padding;                 // '=' seen: only '=' and white space may follow
    private byte[] _output = new byte[64];
    private long _offset;                  // body bytes consumed before the current block

    public byte[] Filter(byte[] input, int startIndex, int length, out int outputIndex, out int outputLength)
    {
        Collect(input.AsSpan(startIndex, length));
        // Whole groups decode now; after padding everything waits for the end, where the padding is checked.
        int whole = _padding ? 0 : _pending & ~3;
        return Decode(whole, isFinalBlock: false, out outputIndex, out outputLength);
    }

    public byte[] Flush(byte[] input, int startIndex, int length, out int outputIndex, out int outputLength)
    {
        Collect(input.AsSpan(startIndex, length));
        return Decode(_pending, isFinalBlock: true, out outputIndex, out outputLength);
    }

    public void Reset()
    {
        _pending = 0;
        _padding = false;
        _offset = 0;
    }

    private void Collect(ReadOnlySpan<byte> block)
    {
        if (_chars.Length < _pending + block.Length)
        {
            Array.Resize(ref _chars, _pending + block.Length);
        }

        int i = 0;
        while (i < block.Length)
        {
            ReadOnlySpan<byte> rest = block[i..];
            if (_padding)
            {
                int bad = rest.IndexOfAnyExcept(Base64Alphabet.PaddingOrWhiteSpace);
                if (bad >= 0)
                {
                    throw Error(MimeErrorReason.InvalidBase64Character, $"data after base64 padding at body offset {_offset + i + bad}");
                }

                foreach (byte b in rest)
                {
                    if (b == (byte)'=')
                    {
                        _chars[_pending++] = b;
                    }
                }

                break;
            }

            // Vectorised: copy the run of alphabet characters, then look at what stopped it.
            int stop = rest.IndexOfAnyExcept(Base64Alphabet.Characters);
            int run = stop < 0 ? rest.Length : stop;
            rest[..run].CopyTo(_chars.AsSpan(_pending));
            _pending += run;
            i += run;
            if (stop < 0)
            {
                break;
            }

            byte c = block[i];
            if (Base64Alphabet.LineWhiteSpace.Contains(c))
            {
                int next = block[i..].IndexOfAnyExcept(Base64Alphabet.LineWhiteSpace);
                i = next < 0 ? block.Length : i + next;
            }
            else if (c == (byte)'=')
            {
                _padding = true;
                _chars[_pending++] = c;
                i++;
            }
            else
            {
                throw Error(MimeErrorReason.InvalidBase64Character, $"invalid base64 character {Base64Alphabet.Describe(c)} at body offset {_offset + i}");
            }
        }

        _offset += block.Length;
    }

    private byte[] Decode(int count, bool isFinalBlock, out int outputIndex, out int outputLength)
    {
        int max = (count / 4 * 3) + 3;
        if (_output.Length < max)
        {
            _output = new byte[max];
        }

        OperationStatus status = Base64.DecodeFromUtf8(_chars.AsSpan(0, count), _output, out int consumed, out int written, isFinalBlock);
        if (status != OperationStatus.Done || consumed != count)
        {
            throw Error(MimeErrorReason.InvalidBase64End,
                $"base64 body ends in the middle of a 4-character group or with misplaced padding (body offset {_offset})");
        }

        _chars.AsSpan(count, _pending - count).CopyTo(_chars);
        _pending -= count;
        outputIndex = 0;
        outputLength = written;
        return _output;
    }

    private static MimeFormatException Error(MimeErrorReason reason, string message) => MimeFormatException.Create(reason, message);
}

/// <summary>Encodes a body as base64 lines of 76 characters ending in CRLF (RFC 2045 §6.8, RFC 8551 §3.1.3), the last
/// line shorter and padded: what MimeKit's base64 <see cref="EncoderFilter"/> and <see cref="Unix2DosFilter"/> write.</summary>
internal sealed class Base64LineEncoderFilter : IMimeFilter
{
    public const int LineLength = 76;
    private const int BytesPerLine = LineLength / 4 * 3; // 57

    private readonly byte[] _pending = new byte[BytesPerLine];
    private int _pendingCount;
    private byte[] _output = new byte[LineLength + 2];

    public byte[] Filter(byte[] input, int startIndex, int length, out int outputIndex, out int outputLength) =>
        Encode(input.AsSpan(startIndex, length), final: false, out outputIndex, out outputLength);

    public byte[] Flush(byte[] input, int startIndex, int length, out int outputIndex, out int outputLength) =>
        Encode(input.AsSpan(startIndex, length), final: true, out outputIndex, out outputLength);

    public void Reset() => _pendingCount = 0;

    private byte[] Encode(ReadOnlySpan<byte> data, bool final, out int outputIndex, out int outputLength)
    {
        int lines = ((_pendingCount + data.Length) / BytesPerLine) + 1;
        if (_output.Length < lines * (LineLength + 2))
        {
            _output = new byte[lines * (LineLength + 2)];
        }

        int written = 0;
        if (_pendingCount > 0)
        {
            int take = Math.Min(BytesPerLine - _pendingCount, data.Length);
            data[..take].CopyTo(_pending.AsSpan(_pendingCount));
            _pendingCount += take;
            data = data[take..];
            if (_pendingCount == BytesPerLine || final)
            {
                written += WriteLine(_pending.AsSpan(0, _pendingCount), written);
                _pendingCount = 0;
            }
        }

        while (data.Length >= BytesPerLine || (final && !data.IsEmpty))
        {
            int take = Math.Min(BytesPerLine, data.Length);
            written += WriteLine(data[..take], written);
            data = data[take..];
        }

        data.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += data.Length;
        outputIndex = 0;
        outputLength = written;
        return _output;
    }

    private int WriteLine(ReadOnlySpan<byte> line, int at)
    {
        Base64.EncodeToUtf8(line, _output.AsSpan(at), out _, out int chars, isFinalBlock: true);
        _output[at + chars] = (byte)'\r';
        _output[at + chars + 1] = (byte)'\n';
        return chars + 2;
    }
}
