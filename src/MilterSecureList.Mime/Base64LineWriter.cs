using System.Buffers.Text;

namespace MilterSecureList.Mime;

/// <summary>
/// Streaming base64 encoder for a MIME body: lines of 76 characters ending in CRLF (RFC 2045 §6.8,
/// RFC 8551 §3.1.3), the last line shorter and padded. Write any number of chunks, then
/// <see cref="Complete"/> (or dispose). Encodes whole lines with <see cref="Base64.EncodeToUtf8(ReadOnlySpan{byte}, Span{byte}, out int, out int, bool)"/>
/// into a fixed block buffer, so memory does not grow with the body.
/// </summary>
public sealed class Base64LineWriter : IDisposable
{
    /// <summary>Characters per line, without the CRLF.</summary>
    public const int LineLength = 76;

    private const int BytesPerLine = LineLength / 4 * 3; // 57
    private const int LinesPerBlock = 256;
    private const int BlockInput = BytesPerLine * LinesPerBlock;
    private const int BlockOutput = (LineLength + 2) * LinesPerBlock;

    private readonly Stream _output;
    private readonly byte[] _pending = new byte[BlockInput];
    private readonly byte[] _encoded = new byte[BlockOutput];
    private int _pendingCount;
    private bool _completed;

    public Base64LineWriter(Stream output)
    {
        _output = output;
    }

    /// <summary>Bytes of output (base64 characters plus CRLFs) that <paramref name="byteCount"/> input bytes produce.</summary>
    public static long GetEncodedLength(long byteCount)
    {
        long chars = (byteCount + 2) / 3 * 4;
        long lines = (chars + LineLength - 1) / LineLength;
        return chars + (2 * lines);
    }

    /// <summary>Encodes <paramref name="data"/> as a complete base64 body into <paramref name="output"/>.</summary>
    public static void Encode(ReadOnlySpan<byte> data, Stream output)
    {
        using var writer = new Base64LineWriter(output);
        writer.Write(data);
        writer.Complete();
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (_pendingCount > 0)
        {
            int take = Math.Min(data.Length, BlockInput - _pendingCount);
            data[..take].CopyTo(_pending.AsSpan(_pendingCount));
            _pendingCount += take;
            data = data[take..];
            if (_pendingCount < BlockInput)
            {
                return;
            }

            WriteLines(_pending);
            _pendingCount = 0;
        }

        // Whole blocks straight from the caller's span; only the tail is copied.
        while (data.Length >= BlockInput)
        {
            WriteLines(data[..BlockInput]);
            data = data[BlockInput..];
        }

        data.CopyTo(_pending);
        _pendingCount = data.Length;
    }

    /// <summary>Writes the remaining bytes as the final (padded) lines. Idempotent.</summary>
    public void Complete()
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        if (_pendingCount > 0)
        {
            WriteLines(_pending.AsSpan(0, _pendingCount));
            _pendingCount = 0;
        }
    }

    public void Dispose() => Complete();

    // Encodes input (whole lines, except possibly a short final one) as CRLF-terminated lines.
    private void WriteLines(ReadOnlySpan<byte> input)
    {
        int written = 0;
        Span<byte> encoded = _encoded;
        while (!input.IsEmpty)
        {
            int take = Math.Min(BytesPerLine, input.Length);
            Base64.EncodeToUtf8(input[..take], encoded[written..], out _, out int chars, isFinalBlock: true);
            written += chars;
            encoded[written++] = (byte)'\r';
            encoded[written++] = (byte)'\n';
            input = input[take..];
        }

        _output.Write(encoded[..written]);
    }
}
