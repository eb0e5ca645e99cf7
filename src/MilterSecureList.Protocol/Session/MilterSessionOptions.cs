using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>Limits of one milter connection. Every limit has its default here.</summary>
public sealed class MilterSessionOptions
{
    /// <summary>Largest frame payload accepted; larger length prefixes close the connection. Default 1 MiB, minimum 65535.</summary>
    public int MaxPayload { get; init; } = MilterLimits.DefaultMaxPayload;

    /// <summary>Body bytes of one message kept in pooled memory before its spool continues in the connection's temp file. Default 2 MiB.</summary>
    public long SpoolThreshold { get; init; } = 2 * 1024 * 1024;

    /// <summary>
    /// Body bytes all connections of one server keep in memory together; beyond it bodies continue in temp files
    /// (<see cref="SpoolMemoryBudget"/>). Default 16 MiB.
    /// </summary>
    public long SpoolMemory { get; init; } = 16 * 1024 * 1024;

    /// <summary>Largest body accepted; beyond it the body is no longer stored and the message gets <see cref="OversizeVerdict"/>. Default 50 MiB.</summary>
    public long MaxMessageSize { get; init; } = 50L * 1024 * 1024;

    /// <summary>Maximum headers kept per message (bounded memory); more is a reason to reject like oversize. Default 1000.</summary>
    public int MaxHeaders { get; init; } = 1000;

    /// <summary>Maximum recipients kept per message. Default 10000.</summary>
    public int MaxRecipients { get; init; } = 10000;

    /// <summary>Directory for spilled bodies. Default: the system temp directory.</summary>
    public string? TempDirectory { get; init; }

    /// <summary>Verdict for a message over a limit: 552 5.3.4 (RFC 3463: message too big for system).</summary>
    public MilterVerdict OversizeVerdict { get; init; } = MilterVerdict.Reply(552, "5.3.4", "Message size exceeds fixed limit");

    /// <summary>Flush the output after this many REPLBODY bytes, so a large body never sits whole in the pipe.</summary>
    internal const int BodyFlushBytes = 128 * 1024;
}
