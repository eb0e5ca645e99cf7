namespace MilterSecureList.Gateway;

/// <summary>What a message's top-level Content-Type says about S/MIME (RFC 8551 §3.2, §3.5).</summary>
public enum SmimeKind
{
    /// <summary>Not S/MIME (plain text, multipart/mixed, ...).</summary>
    None,

    /// <summary>multipart/signed with protocol application/(x-)pkcs7-signature.</summary>
    MultipartSigned,

    /// <summary>application/(x-)pkcs7-mime: signed-data, enveloped-data or authEnveloped-data.</summary>
    Pkcs7Mime,

    /// <summary>Signed or encrypted in a form we do not handle (PGP/MIME, other multipart/signed protocols).</summary>
    OtherProtected,
}

/// <summary>The S/MIME form of an entity, read from its Content-Type with MimeKit's parser.</summary>
public sealed record SmimeForm(SmimeKind Kind, string? Boundary, string? SmimeType)
{
    public static SmimeForm Of(IEnumerable<GatewayHeader> headers)
    {
        GatewayHeader? header = headers.LastOrDefault(h => string.Equals(h.Name, "Content-Type", StringComparison.OrdinalIgnoreCase));
        if (header is null || !MimeKit.ContentType.TryParse(MessageText.Unfold(header.Value), out MimeKit.ContentType? type))
        {
            return new SmimeForm(SmimeKind.None, null, null);
        }

        string media = $"{type.MediaType}/{type.MediaSubtype}".ToLowerInvariant();
        switch (media)
        {
            case "multipart/signed":
                string protocol = (type.Parameters["protocol"] ?? string.Empty).ToLowerInvariant();
                return protocol is "application/pkcs7-signature" or "application/x-pkcs7-signature"
                    ? new SmimeForm(SmimeKind.MultipartSigned, type.Boundary, null)
                    : new SmimeForm(SmimeKind.OtherProtected, type.Boundary, null);
            case "application/pkcs7-mime" or "application/x-pkcs7-mime":
                return new SmimeForm(SmimeKind.Pkcs7Mime, null, type.Parameters["smime-type"]?.ToLowerInvariant());
            case "multipart/encrypted":
                return new SmimeForm(SmimeKind.OtherProtected, type.Boundary, null);
            default:
                return new SmimeForm(SmimeKind.None, null, null);
        }
    }
}

/// <summary>
/// The two parts of a multipart/signed body, as bytes (RFC 1847 §2.1): the signed entity exactly as it
/// appears between the delimiters (the CRLF before the next delimiter belongs to the delimiter, RFC 2046
/// §5.1.1), and the signature entity. MimeKit is not used here because verification needs the exact bytes.
/// </summary>
public static class MultipartSignedBody
{
    public static (ReadOnlyMemory<byte> Signed, ReadOnlyMemory<byte> Signature) Split(ReadOnlyMemory<byte> body, string boundary)
    {
        byte[] delimiter = System.Text.Encoding.ASCII.GetBytes("--" + boundary);
        var starts = new List<(int LineStart, int ContentStart, bool Close)>();
        ReadOnlySpan<byte> span = body.Span;
        int position = 0;
        while (position < span.Length)
        {
            int end = span[position..].IndexOf("\r\n"u8);
            int lineEnd = end < 0 ? span.Length : position + end;
            ReadOnlySpan<byte> line = span[position..lineEnd];
            if (line.StartsWith(delimiter))
            {
                ReadOnlySpan<byte> rest = line[delimiter.Length..];
                bool close = rest.StartsWith("--"u8);
                if ((close ? rest[2..] : rest).Trim(" \t"u8).Length == 0)
                {
                    starts.Add((position, end < 0 ? span.Length : lineEnd + 2, close));
                    if (close)
                    {
                        break;
                    }
                }
            }

            position = end < 0 ? span.Length : lineEnd + 2;
        }

        if (starts.Count != 3 || starts[0].Close || starts[1].Close || !starts[2].Close)
        {
            throw new GatewayException("multipart/signed must have exactly two parts and a closing delimiter");
        }

        return (Part(body, starts[0].ContentStart, starts[1].LineStart), Part(body, starts[1].ContentStart, starts[2].LineStart));

        static ReadOnlyMemory<byte> Part(ReadOnlyMemory<byte> body, int start, int nextDelimiter)
        {
            // The CRLF before a delimiter is part of the delimiter.
            int end = nextDelimiter >= 2 && body.Span[nextDelimiter - 2] == '\r' && body.Span[nextDelimiter - 1] == '\n' ? nextDelimiter - 2 : nextDelimiter;
            return end < start ? ReadOnlyMemory<byte>.Empty : body[start..end];
        }
    }
}
