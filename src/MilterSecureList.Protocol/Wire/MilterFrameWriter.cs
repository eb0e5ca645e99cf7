using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace MilterSecureList.Protocol.Wire;

/// <summary>Writes frames (length, code, payload) into an <see cref="IBufferWriter{T}"/>. No I/O.</summary>
public static class MilterFrameWriter
{
    /// <summary>Writes a frame with no payload.</summary>
    public static void WriteEmpty(IBufferWriter<byte> writer, byte code)
    {
        Span<byte> span = writer.GetSpan(5);
        BinaryPrimitives.WriteUInt32BigEndian(span, 1);
        span[4] = code;
        writer.Advance(5);
    }

    /// <summary>Writes a frame whose payload is raw bytes (BODY, REPLBODY).</summary>
    public static void WriteRaw(IBufferWriter<byte> writer, byte code, ReadOnlySpan<byte> payload)
    {
        WriteHeader(writer, code, payload.Length);
        writer.Write(payload);
    }

    /// <summary>Writes the 5-byte frame header for a payload of <paramref name="payloadLength"/> bytes.</summary>
    public static void WriteHeader(IBufferWriter<byte> writer, byte code, int payloadLength)
    {
        Span<byte> span = writer.GetSpan(5);
        BinaryPrimitives.WriteUInt32BigEndian(span, checked((uint)payloadLength + 1));
        span[4] = code;
        writer.Advance(5);
    }

    /// <summary>Writes a frame whose payload is a sequence of NUL-terminated strings.</summary>
    public static void WriteStrings(IBufferWriter<byte> writer, byte code, ReadOnlySpan<string> strings)
    {
        int length = 0;
        foreach (string s in strings)
        {
            length += Encoding.UTF8.GetByteCount(s) + 1;
        }

        WriteHeader(writer, code, length);
        foreach (string s in strings)
        {
            WriteCString(writer, s);
        }
    }

    /// <summary>Writes a frame: a big-endian uint32 then NUL-terminated strings (INSHEADER, CHGHEADER).</summary>
    public static void WriteIndexedStrings(IBufferWriter<byte> writer, byte code, uint index, ReadOnlySpan<string> strings)
    {
        int length = 4;
        foreach (string s in strings)
        {
            length += Encoding.UTF8.GetByteCount(s) + 1;
        }

        WriteHeader(writer, code, length);
        Span<byte> span = writer.GetSpan(4);
        BinaryPrimitives.WriteUInt32BigEndian(span, index);
        writer.Advance(4);
        foreach (string s in strings)
        {
            WriteCString(writer, s);
        }
    }

    internal static void WriteCString(IBufferWriter<byte> writer, string s)
    {
        int count = Encoding.UTF8.GetByteCount(s);
        Span<byte> span = writer.GetSpan(count + 1);
        Encoding.UTF8.GetBytes(s, span);
        span[count] = 0;
        writer.Advance(count + 1);
    }

    internal static void WriteUInt32(IBufferWriter<byte> writer, uint value)
    {
        Span<byte> span = writer.GetSpan(4);
        BinaryPrimitives.WriteUInt32BigEndian(span, value);
        writer.Advance(4);
    }
}
