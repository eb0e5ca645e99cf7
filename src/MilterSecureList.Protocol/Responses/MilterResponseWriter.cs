using System.Buffers;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Responses;

/// <summary>Encoders for the responses that are neither verdicts nor modifications: negotiation and flow.</summary>
public static class MilterResponseWriter
{
    /// <summary>'p' SMFIR_PROGRESS: not final; resets the MTA's read timeout.</summary>
    public static void WriteProgress(IBufferWriter<byte> writer) => MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Progress);

    /// <summary>'s' SMFIR_SKIP: skip the rest of the events of this type (needs SMFIP_SKIP).</summary>
    public static void WriteSkip(IBufferWriter<byte> writer) => MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Skip);

    /// <summary>
    /// 'b' SMFIR_REPLBODY chunks of at most <see cref="MilterLimits.ChunkSize"/> bytes, written consecutively.
    /// An empty body is one REPLBODY of length 0 (Postfix then writes an empty body).
    /// </summary>
    public static void WriteReplaceBody(IBufferWriter<byte> writer, ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            MilterFrameWriter.WriteHeader(writer, (byte)MilterResponseCode.ReplaceBody, 0);
            return;
        }

        while (!body.IsEmpty)
        {
            int n = Math.Min(body.Length, MilterLimits.ChunkSize);
            MilterFrameWriter.WriteRaw(writer, (byte)MilterResponseCode.ReplaceBody, body[..n]);
            body = body[n..];
        }
    }

    /// <summary>
    /// The OPTNEG reply: 'O', u32 version, u32 actions, u32 protocol, then optional macro lists
    /// { u32 stage, "name name ...\0" } (docs/protocol.md §5).
    /// </summary>
    public static void WriteOptionNegotiation(IBufferWriter<byte> writer, uint version, MilterActions actions, MilterProtocolOptions protocol, IReadOnlyDictionary<MacroStage, string>? macroRequests)
    {
        int length = 12;
        if (macroRequests is not null)
        {
            foreach (KeyValuePair<MacroStage, string> kv in macroRequests)
            {
                length += 4 + System.Text.Encoding.ASCII.GetByteCount(kv.Value) + 1;
            }
        }

        MilterFrameWriter.WriteHeader(writer, (byte)MilterResponseCode.OptionNegotiation, length);
        MilterFrameWriter.WriteUInt32(writer, version);
        MilterFrameWriter.WriteUInt32(writer, (uint)actions);
        MilterFrameWriter.WriteUInt32(writer, (uint)protocol);
        if (macroRequests is not null)
        {
            foreach (KeyValuePair<MacroStage, string> kv in macroRequests)
            {
                MilterFrameWriter.WriteUInt32(writer, (uint)kv.Key);
                MilterFrameWriter.WriteCString(writer, kv.Value);
            }
        }
    }
}
