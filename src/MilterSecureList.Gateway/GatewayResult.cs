using System.Text;

namespace MilterSecureList.Gateway;

/// <summary>A header as the MTA passed it: the value after the colon (folded lines joined with LF or CRLF).</summary>
public sealed record GatewayHeader(string Name, string Value);

/// <summary>An SMTP reply with an enhanced status code of the same class (RFC 3463).</summary>
public sealed record GatewayReply(int Code, string EnhancedCode, string Text)
{
    public override string ToString() => $"{Code} {EnhancedCode} {Text}";
}

public enum GatewayVerdict
{
    /// <summary>Deliver, after the modifications (if any).</summary>
    Continue,
    Reject,
    Tempfail,
}

/// <summary>
/// What the gateway decided for one message: a verdict and, for <see cref="GatewayVerdict.Continue"/>, header
/// deletions (per name, 1-based occurrence), headers to prepend and append, and the new body. Pure data: the
/// milter handler turns it into protocol modifications, <c>securelist gateway check</c> prints and applies it.
/// </summary>
public sealed class GatewayResult
{
    private GatewayResult(GatewayVerdict verdict, GatewayReply? reply, string reason)
    {
        Verdict = verdict;
        Reply = reply;
        Reason = reason;
    }

    public GatewayVerdict Verdict { get; }

    public GatewayReply? Reply { get; }

    /// <summary>One line for the log and the CLI: what was done or why not (never content or keys).</summary>
    public string Reason { get; internal set; }

    /// <summary>Headers to delete: name and 1-based occurrence among headers of that name, highest first per name.</summary>
    public List<(string Name, int Occurrence)> DeleteHeaders { get; } = [];

    /// <summary>Headers to put before all others (e.g. Authentication-Results, RFC 8601 §5).</summary>
    public List<GatewayHeader> PrependHeaders { get; } = [];

    /// <summary>Headers to append (the new Content-* headers of a replaced body).</summary>
    public List<GatewayHeader> AddHeaders { get; } = [];

    /// <summary>The replacement body (CRLF line ends), or null when the body stays.</summary>
    public byte[]? NewBody { get; set; }

    public bool HasModifications => DeleteHeaders.Count > 0 || PrependHeaders.Count > 0 || AddHeaders.Count > 0 || NewBody is not null;

    public static GatewayResult Pass(string reason) => new(GatewayVerdict.Continue, null, reason);

    public static GatewayResult Reject(string enhanced, string text, string reason) => new(GatewayVerdict.Reject, new GatewayReply(550, enhanced, text), reason);

    public static GatewayResult Tempfail(string enhanced, string text, string reason) => new(GatewayVerdict.Tempfail, new GatewayReply(451, enhanced, text), reason);

    /// <summary>The whole message after the modifications, as the MTA would store it (offline check and tests).</summary>
    public byte[] Apply(IReadOnlyList<GatewayHeader> headers, ReadOnlySpan<byte> body)
    {
        var kept = new List<GatewayHeader>(headers.Count);
        var seen = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (GatewayHeader header in headers)
        {
            int occurrence = seen[header.Name] = seen.GetValueOrDefault(header.Name) + 1;
            if (!DeleteHeaders.Any(d => string.Equals(d.Name, header.Name, StringComparison.OrdinalIgnoreCase) && d.Occurrence == occurrence))
            {
                kept.Add(header);
            }
        }

        var output = new MemoryStream();
        foreach (GatewayHeader header in PrependHeaders.Concat(kept).Concat(AddHeaders))
        {
            byte[] line = Encoding.UTF8.GetBytes(MessageText.HeaderLine(header));
            output.Write(line);
        }

        output.Write("\r\n"u8);
        output.Write(NewBody ?? body);
        return output.ToArray();
    }
}

/// <summary>Whole messages as files (offline check, tests): header fields and body, CRLF line ends.</summary>
public static class GatewayMessages
{
    public static (List<GatewayHeader> Headers, byte[] Body) Split(ReadOnlySpan<byte> message)
    {
        byte[] crlf = MessageText.ToCrlf(message);
        (List<GatewayHeader> headers, int offset) = MessageText.SplitEntity(crlf);
        return (headers, crlf[offset..]);
    }
}
