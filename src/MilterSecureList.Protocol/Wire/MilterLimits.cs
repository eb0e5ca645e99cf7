namespace MilterSecureList.Protocol.Wire;

/// <summary>Protocol size constants. See docs/protocol.md §2 (size limits).</summary>
public static class MilterLimits
{
    /// <summary>Largest data chunk libmilter peers accept (MILTER_CHUNK_SIZE); used for REPLBODY.</summary>
    public const int ChunkSize = 65535;

    /// <summary>
    /// Default maximum payload per frame. Postfix never sends more than 65535 bytes of payload;
    /// 1 MiB leaves room for other MTAs while bounding what one frame can make us buffer.
    /// </summary>
    public const int DefaultMaxPayload = 1024 * 1024;

    /// <summary>The smallest maximum allowed: a full 65535-byte chunk must fit.</summary>
    public const int MinMaxPayload = ChunkSize;

    /// <summary>Protocol version we speak (v6, the one Postfix 3.7 and sendmail 8.17 use).</summary>
    public const uint ProtocolVersion = 6;
}
