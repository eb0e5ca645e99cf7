using System.Buffers;
using System.Text;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Responses;

/// <summary>What a final verdict does. Flow responses (progress, skip) are not verdicts.</summary>
public enum MilterVerdictKind
{
    Continue,
    Accept,
    Reject,
    Tempfail,
    Discard,
    ReplyCode,
    Shutdown,
}

/// <summary>
/// A final reply (docs/protocol.md §4): continue, accept, reject, tempfail, discard, or a custom
/// SMTP reply. Custom replies are validated here so a malformed one fails in our code, not in the MTA
/// (Postfix answers a class mismatch such as "550 4.7.1" with 451 4.3.5).
/// </summary>
public sealed class MilterVerdict
{
    public static readonly MilterVerdict Continue = new(MilterVerdictKind.Continue, null);
    public static readonly MilterVerdict Accept = new(MilterVerdictKind.Accept, null);
    public static readonly MilterVerdict Reject = new(MilterVerdictKind.Reject, null);
    public static readonly MilterVerdict Tempfail = new(MilterVerdictKind.Tempfail, null);
    public static readonly MilterVerdict Discard = new(MilterVerdictKind.Discard, null);

    /// <summary>SMFIR_SHUTDOWN: Postfix answers 421 and disconnects; sendmail refuses it.</summary>
    public static readonly MilterVerdict Shutdown = new(MilterVerdictKind.Shutdown, null);

    private MilterVerdict(MilterVerdictKind kind, string? replyText)
    {
        Kind = kind;
        ReplyText = replyText;
    }

    public MilterVerdictKind Kind { get; }

    /// <summary>The full reply line for <see cref="MilterVerdictKind.ReplyCode"/>, e.g. "550 5.7.1 no".</summary>
    public string? ReplyText { get; }

    /// <summary>True when the verdict ends the message (anything but continue).</summary>
    public bool EndsMessage => Kind != MilterVerdictKind.Continue;

    /// <summary>
    /// A custom reply: <paramref name="code"/> 4xx or 5xx, optional enhanced status whose class digit
    /// equals the code's first digit, and a one-line text (no CR/LF; '%' is doubled because sendmail
    /// treats the text as a format string).
    /// </summary>
    /// <exception cref="ArgumentException">the code, status or text is not valid.</exception>
    public static MilterVerdict Reply(int code, string? enhancedStatus, string text)
    {
        if (code < 400 || code > 599)
        {
            throw new ArgumentOutOfRangeException(nameof(code), code, "reply code must be 4xx or 5xx");
        }

        ArgumentNullException.ThrowIfNull(text);
        if (text.AsSpan().IndexOfAny('\r', '\n') >= 0 || text.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("reply text must be one line without NUL", nameof(text));
        }

        if (text.Length > 980)
        {
            throw new ArgumentException("reply text longer than 980 characters", nameof(text));
        }

        var sb = new StringBuilder(16 + text.Length);
        sb.Append(code.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append(' ');
        if (!string.IsNullOrEmpty(enhancedStatus))
        {
            if (!IsEnhancedStatus(enhancedStatus))
            {
                throw new ArgumentException($"'{enhancedStatus}' is not an enhanced status code (class.subject.detail)", nameof(enhancedStatus));
            }

            if (enhancedStatus[0] != (char)('0' + (code / 100)))
            {
                throw new ArgumentException($"enhanced status {enhancedStatus} does not match reply code {code}", nameof(enhancedStatus));
            }

            sb.Append(enhancedStatus).Append(' ');
        }

        sb.Append(text.Replace("%", "%%", StringComparison.Ordinal));
        return new MilterVerdict(MilterVerdictKind.ReplyCode, sb.ToString());
    }

    private static bool IsEnhancedStatus(string s)
    {
        // RFC 3463: class "." subject "." detail; class is 2, 4 or 5; subject and detail 1-3 digits.
        string[] parts = s.Split('.');
        if (parts.Length != 3 || parts[0].Length != 1 || parts[0][0] is not ('2' or '4' or '5'))
        {
            return false;
        }

        return parts[1].Length is >= 1 and <= 3 && parts[1].All(char.IsAsciiDigit)
            && parts[2].Length is >= 1 and <= 3 && parts[2].All(char.IsAsciiDigit);
    }

    /// <summary>Encodes the verdict as its one final frame.</summary>
    public void WriteTo(IBufferWriter<byte> writer)
    {
        switch (Kind)
        {
            case MilterVerdictKind.Continue: MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Continue); break;
            case MilterVerdictKind.Accept: MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Accept); break;
            case MilterVerdictKind.Reject: MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Reject); break;
            case MilterVerdictKind.Tempfail: MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Tempfail); break;
            case MilterVerdictKind.Discard: MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Discard); break;
            case MilterVerdictKind.Shutdown: MilterFrameWriter.WriteEmpty(writer, (byte)MilterResponseCode.Shutdown); break;
            case MilterVerdictKind.ReplyCode: MilterFrameWriter.WriteStrings(writer, (byte)MilterResponseCode.ReplyCode, [ReplyText!]); break;
            default: throw new InvalidOperationException($"unknown verdict kind {Kind}");
        }
    }

    public override string ToString() => Kind == MilterVerdictKind.ReplyCode ? $"reply {ReplyText}" : Kind.ToString().ToLowerInvariant();
}
