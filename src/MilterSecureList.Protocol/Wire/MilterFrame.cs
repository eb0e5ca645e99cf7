using System.Buffers;

namespace MilterSecureList.Protocol.Wire;

/// <summary>
/// One frame as read off the wire. <see cref="Payload"/> borrows the pipe's memory and is valid
/// only until the reader advances: copy what must outlive it.
/// </summary>
public readonly struct MilterFrame
{
    public MilterFrame(byte code, ReadOnlySequence<byte> payload)
    {
        Code = code;
        Payload = payload;
    }

    public byte Code { get; }

    public ReadOnlySequence<byte> Payload { get; }

    public MilterCommandCode Command => (MilterCommandCode)Code;
}
