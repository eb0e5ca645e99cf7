using System.Buffers;
using System.Buffers.Binary;

namespace MilterSecureList.Protocol.Wire;

/// <summary>
/// The pure framer. Layout (docs/protocol.md §2):
/// <code>
/// +--------+--------+--------+--------+--------+-------------------------+
/// |        length (uint32, big-endian) |  code  | payload (length-1 bytes)|
/// +--------+--------+--------+--------+--------+-------------------------+
/// </code>
/// No I/O, no logging, no state beyond its arguments.
/// </summary>
public static class MilterFrameReader
{
    public const int HeaderSize = 4;

    /// <summary>
    /// Reads one frame. Returns false and leaves <paramref name="buffer"/> unchanged when the frame is
    /// incomplete. The length is checked against <paramref name="maxPayload"/> as soon as the four
    /// length bytes are present, before waiting for (and so buffering) the payload.
    /// </summary>
    /// <exception cref="MilterProtocolException">length 0 or above the limit.</exception>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxPayload, out MilterFrame frame)
    {
        frame = default;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }

        uint length;
        if (buffer.FirstSpan.Length >= HeaderSize)
        {
            length = BinaryPrimitives.ReadUInt32BigEndian(buffer.FirstSpan);
        }
        else
        {
            Span<byte> header = stackalloc byte[HeaderSize];
            buffer.Slice(0, HeaderSize).CopyTo(header);
            length = BinaryPrimitives.ReadUInt32BigEndian(header);
        }

        if (length == 0)
        {
            MilterProtocolException.Throw(MilterViolation.ZeroLength, "frame length 0 (must include the command byte)");
        }

        // length counts the code byte; compare in 64 bits so a huge uint cannot wrap.
        if ((long)length - 1 > maxPayload)
        {
            MilterProtocolException.Throw(MilterViolation.FrameTooLarge, $"frame length {length} exceeds the limit of {maxPayload + 1L}");
        }

        if (buffer.Length < HeaderSize + (long)length)
        {
            return false;
        }

        ReadOnlySequence<byte> body = buffer.Slice(HeaderSize, length);
        byte code = body.FirstSpan[0];
        frame = new MilterFrame(code, body.Slice(1));
        buffer = buffer.Slice(body.End);
        return true;
    }
}
