using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace MilterSecureList.Protocol.Wire;

/// <summary>Why a milter connection was ended because the peer broke the protocol.</summary>
public enum MilterViolation
{
    /// <summary>Length prefix of 0: every frame carries at least the code byte.</summary>
    ZeroLength,
    /// <summary>Length prefix above the configured maximum (checked before any payload is buffered).</summary>
    FrameTooLarge,
    /// <summary>A command code this implementation does not know.</summary>
    UnknownCommand,
    /// <summary>A payload shorter than its fixed fields, or a string without its NUL.</summary>
    MalformedPayload,
    /// <summary>A command that is not legal in the current state.</summary>
    CommandOutOfOrder,
    /// <summary>The MTA offered a protocol version below 2.</summary>
    UnsupportedVersion,
    /// <summary>The peer closed the connection in the middle of a frame.</summary>
    TruncatedFrame,
}

/// <summary>A protocol violation by the peer. It ends that one connection; it never becomes a verdict.</summary>
public sealed class MilterProtocolException : Exception
{
    public MilterProtocolException(MilterViolation reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    public MilterViolation Reason { get; }

    [DoesNotReturn]
    [StackTraceHidden]
    internal static void Throw(MilterViolation reason, string message) => throw new MilterProtocolException(reason, message);
}
