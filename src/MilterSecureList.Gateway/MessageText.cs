using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Cms;

namespace MilterSecureList.Gateway;

/// <summary>Small helpers for the text form of messages: header lines and CRLF canonical form (RFC 5322, RFC 8551 §3.1.1).</summary>
internal static class MessageText
{
    /// <summary>"Name: value" with folded continuation lines in CRLF form and a final CRLF.</summary>
    public static string HeaderLine(GatewayHeader header)
    {
        string value = header.Value.Replace("\r\n", "\n", StringComparison.Ordinal).Replace("\n", "\r\n", StringComparison.Ordinal);
        string separator = value.Length > 0 && value[0] is ' ' or '\t' ? ":" : ": ";
        return header.Name + separator + value + "\r\n";
    }

    /// <summary>Unfolded, trimmed header value.</summary>
    public static string Unfold(string value) => value.Replace("\r", string.Empty, StringComparison.Ordinal).Replace("\n", string.Empty, StringComparison.Ordinal).Trim();

    /// <summary>The bytes with every bare LF (and bare CR) turned into CRLF: S/MIME signs and parses canonical text.</summary>
    public static byte[] ToCrlf(ReadOnlySpan<byte> data)
    {
        int bare = 0;
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
            {
                bare++;
            }
        }

        if (bare == 0)
        {
            return data.ToArray();
        }

        var output = new byte[data.Length + bare];
        int o = 0;
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
            {
                output[o++] = (byte)'\r';
            }

            output[o++] = data[i];
        }

        return output;
    }

    /// <summary>TEXT from a message (an outsider's choice) made safe for a header value or a log line: printable
    /// ASCII only, at most 200 characters.</summary>
    public static string Printable(string text)
    {
        var chars = text.Take(200).Select(c => c is >= ' ' and < (char)0x7f ? c : '?').ToArray();
        return new string(chars);
    }

    /// <summary>
    /// The body as an array in CRLF form: the caller's own array when it already is one (no bare LF or CR), so a
    /// message body of the usual form is not copied again.
    /// </summary>
    public static byte[] CrlfArray(ReadOnlyMemory<byte> data) =>
        MemoryMarshal.TryGetArray(data, out ArraySegment<byte> whole) && whole.Offset == 0 && whole.Count == whole.Array!.Length && IsCrlf(whole)
            ? whole.Array
            : ToCrlf(data.Span);

    /// <summary>Every CR is followed by LF and every LF preceded by CR.</summary>
    internal static bool IsCrlf(ReadOnlySpan<byte> data)
    {
        int i = data.IndexOfAny((byte)'\r', (byte)'\n');
        while (i >= 0)
        {
            if (data[i] == '\n' || i + 1 >= data.Length || data[i + 1] != '\n')
            {
                return false;
            }

            data = data[(i + 2)..];
            i = data.IndexOfAny((byte)'\r', (byte)'\n');
        }

        return true;
    }

    /// <summary>The parts one after another in one array of the final size.</summary>
    public static byte[] Concat(params ReadOnlySpan<byte[]> parts)
    {
        int length = 0;
        foreach (byte[] part in parts)
        {
            length += part.Length;
        }

        var output = new byte[length];
        int o = 0;
        foreach (byte[] part in parts)
        {
            part.CopyTo(output, o);
            o += part.Length;
        }

        return output;
    }

    /// <summary>Reads a whole stream (bodies are bounded by [Milter] MaxMessageSize before they reach us).</summary>
    public static byte[] ReadAll(Stream stream)
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>Base64 in 76-character CRLF lines (RFC 2045 §6.8).</summary>
    public static byte[] Base64Lines(ReadOnlySpan<byte> data)
    {
        // Straight into bytes, 57 input bytes per line: no string of the whole body in between (a CMS body is
        // the size of the message; docs/design.md, "Gateway performance").
        const int LineInput = 57;
        int lines = data.IsEmpty ? 1 : (data.Length + LineInput - 1) / LineInput;
        var output = new byte[Base64.GetMaxEncodedToUtf8Length(data.Length) + (lines * 2)];
        int o = 0;
        do
        {
            ReadOnlySpan<byte> chunk = data[..Math.Min(LineInput, data.Length)];
            Base64.EncodeToUtf8(chunk, output.AsSpan(o), out _, out int written);
            o += written;
            output[o++] = (byte)'\r';
            output[o++] = (byte)'\n';
            data = data[chunk.Length..];
        }
        while (!data.IsEmpty);

        return output;
    }

    /// <summary>
    /// Decodes base64 text in lines (RFC 2045 §6.8), skipping the white space between and in them as
    /// <see cref="Convert.FromBase64String"/> does; null when it is not valid base64. The text without its line
    /// breaks is decoded in place in a pooled buffer: the result is the only new array (docs/design.md,
    /// "Gateway performance").
    /// </summary>
    public static byte[]? FromBase64Lines(ReadOnlySpan<byte> text)
    {
        using PooledPlaintext? decoded = FromBase64LinesPooled(text);
        return decoded?.Span.ToArray();
    }

    /// <summary>The same, left in the pooled buffer (the inbound CMS is read there and never copied; disposing zeroes
    /// it: an opaque signed message holds its content in plain).</summary>
    public static PooledPlaintext? FromBase64LinesPooled(ReadOnlySpan<byte> text)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(text.Length, 1));
        int length = 0;
        for (ReadOnlySpan<byte> rest = text; !rest.IsEmpty;)
        {
            int space = rest.IndexOfAny(s_base64WhiteSpace);
            ReadOnlySpan<byte> run = space < 0 ? rest : rest[..space];
            run.CopyTo(buffer.AsSpan(length));
            length += run.Length;
            rest = space < 0 ? [] : rest[(space + 1)..];
        }

        if (Base64.DecodeFromUtf8InPlace(buffer.AsSpan(0, length), out int written) == System.Buffers.OperationStatus.Done)
        {
            return new PooledPlaintext(buffer, written);
        }

        // The strict decoder also refuses a last group with unused bits set, which the framework (and other
        // clients) accept: such rare input takes the framework's way.
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        byte[] decoded;
        try
        {
            decoded = Convert.FromBase64String(Encoding.Latin1.GetString(text));
        }
        catch (FormatException)
        {
            return null;
        }

        try
        {
            return PooledPlaintext.CopyOf(decoded);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(decoded);
        }
    }

    private static readonly System.Buffers.SearchValues<byte> s_base64WhiteSpace = System.Buffers.SearchValues.Create(" \t\r\n"u8);

    /// <summary>Splits an entity (headers, empty line, body) into its header fields and body offset.</summary>
    public static (List<GatewayHeader> Headers, int BodyOffset) SplitEntity(ReadOnlySpan<byte> entity)
    {
        var headers = new List<GatewayHeader>();
        int position = 0;
        string? name = null;
        var value = new StringBuilder();
        while (position < entity.Length)
        {
            int end = entity[position..].IndexOf("\r\n"u8);
            int lineEnd = end < 0 ? entity.Length : position + end;
            ReadOnlySpan<byte> line = entity[position..lineEnd];
            position = end < 0 ? entity.Length : lineEnd + 2;
            if (line.Length == 0)
            {
                break;
            }

            if (line[0] is (byte)' ' or (byte)'\t' && name is not null)
            {
                value.Append('\n').Append(Encoding.UTF8.GetString(line));
                continue;
            }

            if (name is not null)
            {
                headers.Add(new GatewayHeader(name, value.ToString()));
            }

            int colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                throw new GatewayException($"malformed header line in a MIME entity ({Encoding.ASCII.GetString(line[..Math.Min(line.Length, 40)])})");
            }

            name = Encoding.ASCII.GetString(line[..colon]).Trim();
            value.Clear().Append(Encoding.UTF8.GetString(line[(colon + 1)..]).TrimStart());
        }

        if (name is not null)
        {
            headers.Add(new GatewayHeader(name, value.ToString()));
        }

        return (headers, position);
    }
}

/// <summary>Bad input the gateway cannot process: the message is malformed (one line, no content).</summary>
public sealed class GatewayException(string message) : Exception(message);
