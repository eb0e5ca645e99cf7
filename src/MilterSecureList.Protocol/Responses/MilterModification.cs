using System.Buffers;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Responses;

/// <summary>
/// An end-of-message edit (docs/protocol.md §4). Not final: a verdict must follow.
/// Each modification names the SMFIF_* action that must have been negotiated for it.
/// </summary>
public abstract record MilterModification
{
    public abstract MilterActions RequiredAction { get; }

    public abstract void WriteTo(IBufferWriter<byte> writer);

    internal static void CheckNoNul(string value, string name)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"{name} must not contain NUL", name);
        }
    }
}

/// <summary>'h' SMFIR_ADDHEADER: name\0 value\0; appended. Fold with LF + whitespace, never CR.</summary>
public sealed record AddHeaderModification(string Name, string Value) : MilterModification
{
    public override MilterActions RequiredAction => MilterActions.AddHeaders;

    public override void WriteTo(IBufferWriter<byte> writer) => MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.AddHeader, [Name, Value]);
}

/// <summary>'i' SMFIR_INSHEADER: u32 index (0-based over all fields), name\0 value\0.</summary>
public sealed record InsertHeaderModification(uint Index, string Name, string Value) : MilterModification
{
    public override MilterActions RequiredAction => MilterActions.AddHeaders;

    public override void WriteTo(IBufferWriter<byte> writer) => MilterFrameWriter.WriteIndexedStrings(writer, (byte)MilterResponseCode.InsertHeader, Index, [Name, Value]);
}

/// <summary>'m' SMFIR_CHGHEADER: u32 index (1-based occurrence of that name), name\0 value\0; empty value deletes.</summary>
public sealed record ChangeHeaderModification(uint Index, string Name, string Value) : MilterModification
{
    public override MilterActions RequiredAction => MilterActions.ChangeHeaders;

    public override void WriteTo(IBufferWriter<byte> writer) => MilterFrameWriter.WriteIndexedStrings(writer, (byte)MilterResponseCode.ChangeHeader, Index, [Name, Value]);
}

/// <summary>'+' SMFIR_ADDRCPT (rcpt\0) or, with ESMTP args, '2' SMFIR_ADDRCPT_PAR (rcpt\0 args\0).</summary>
public sealed record AddRecipientModification(string Recipient, string? EsmtpArgs) : MilterModification
{
    public override MilterActions RequiredAction => EsmtpArgs is null ? MilterActions.AddRecipient : MilterActions.AddRecipientWithArgs;

    public override void WriteTo(IBufferWriter<byte> writer)
    {
        if (EsmtpArgs is null)
        {
            MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.AddRecipient, [Recipient]);
        }
        else
        {
            MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.AddRecipientWithArgs, [Recipient, EsmtpArgs]);
        }
    }
}

/// <summary>'-' SMFIR_DELRCPT: rcpt\0, exactly as RCPT carried it.</summary>
public sealed record DeleteRecipientModification(string Recipient) : MilterModification
{
    public override MilterActions RequiredAction => MilterActions.DeleteRecipient;

    public override void WriteTo(IBufferWriter<byte> writer) => MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.DeleteRecipient, [Recipient]);
}

/// <summary>'e' SMFIR_CHGFROM: sender\0 then optionally args\0.</summary>
public sealed record ChangeFromModification(string Sender, string? EsmtpArgs) : MilterModification
{
    public override MilterActions RequiredAction => MilterActions.ChangeFrom;

    public override void WriteTo(IBufferWriter<byte> writer)
    {
        if (EsmtpArgs is null)
        {
            MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.ChangeFrom, [Sender]);
        }
        else
        {
            MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.ChangeFrom, [Sender, EsmtpArgs]);
        }
    }
}

/// <summary>'q' SMFIR_QUARANTINE: reason\0. Not final (purepythonmilter#18): a verdict still follows.</summary>
public sealed record QuarantineModification(string Reason) : MilterModification
{
    public override MilterActions RequiredAction => MilterActions.Quarantine;

    public override void WriteTo(IBufferWriter<byte> writer) => MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.Quarantine, [Reason]);
}
