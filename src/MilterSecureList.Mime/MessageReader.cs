using System.Text;
using MimeKit;
using MimeKit.IO;

namespace MilterSecureList.Mime;

/// <summary>A message split into its header fields (as MimeKit read them, raw bytes kept) and a stream over the
/// body that follows the empty line, byte for byte as in the input.</summary>
public sealed class RawMessage : IDisposable
{
    internal RawMessage(HeaderList header, Stream body)
    {
        Header = header;
        Body = body;
    }

    /// <summary>The header fields in order. Each keeps its input bytes (<see cref="MimeKit.Header.RawField"/>,
    /// <see cref="MimeKit.Header.RawValue"/> with folding and line ends), so <see cref="MessageWriter"/> writes them
    /// back untouched.</summary>
    public HeaderList Header { get; }

    /// <summary>The body bytes exactly as in the input: a seekable view whose position 0 is the body's first byte.</summary>
    public Stream Body { get; }

    public void Dispose() => Body.Dispose();
}

/// <summary>
/// Reads an RFC 5322 message (CRLF or bare LF line ends) into header fields and a body stream: MimeKit's
/// <see cref="MimeParser"/> reads the header block, and the body is the rest of the input from the offset where
/// the parser stopped. A line that is not a field stays in the list as MimeKit keeps it (and is written back as
/// it was): deciding what a message means is the filter's job, not the reader's.
/// </summary>
public static class MessageReader
{
    /// <summary>The largest header block a message file may have: the daemon's default [Milter] MaxHeaderBytes.
    /// Postfix passes nothing larger to a milter, so the offline tools refuse it too.</summary>
    public const int MaxHeaderBytes = 1024 * 1024;

    /// <summary>Reads the header block. A seekable <paramref name="input"/> is used in place (and owned by the
    /// returned message); anything else is first copied into memory.</summary>
    /// <param name="maxHeaderBytes">The largest header block accepted (<c>securelist check</c> passes the daemon's
    /// configured [Milter] MaxHeaderBytes).</param>
    /// <exception cref="MimeFormatException">Reason <see cref="MimeErrorReason.MalformedHeader"/>: the first line is not a
    /// field; <see cref="MimeErrorReason.HeaderTooLarge"/>: the header block is larger than <paramref name="maxHeaderBytes"/>.</exception>
    public static RawMessage Read(Stream input, long maxHeaderBytes = MaxHeaderBytes)
    {
        Stream seekable = input;
        if (!input.CanSeek)
        {
            var copy = new MemoryStream();
            input.CopyTo(copy);
            input.Dispose();
            copy.Position = 0;
            seekable = copy;
        }

        var parser = new MimeParser(ParserOptions.Default, seekable, MimeFormat.Entity);
        HeaderList headers;
        try
        {
            headers = parser.ParseHeaders();
        }
        catch (FormatException e)
        {
            seekable.Dispose();
            // MimeKit refuses input whose first line is neither a field nor the empty line (an mbox "From " line,
            // a binary file): one line for the sender or operator, not a stack trace.
            throw new MimeFormatException(MimeErrorReason.MalformedHeader, "the message does not start with a header field (Name: value)", e);
        }

        if (parser.Position > maxHeaderBytes)
        {
            seekable.Dispose();
            throw new MimeFormatException(MimeErrorReason.HeaderTooLarge, $"the header block is larger than {maxHeaderBytes} bytes");
        }

        // The parser reads ahead; its Position is where the body starts. The body is a view from there on.
        var body = new BoundStream(seekable, parser.Position, -1, leaveOpen: false);
        return new RawMessage(headers, body);
    }

    /// <summary>The fields as (name, value) pairs, the shape a milter gets them in: value bytes as UTF-8
    /// (RFC 6532), folding removed, outer white space trimmed. Encoded words stay encoded, as in HEADER events.</summary>
    public static IEnumerable<MimeHeader> ToMimeHeaders(this IEnumerable<Header> headers) =>
        headers.Select(h => new MimeHeader(h.Field, RawValueText(h)));

    /// <summary>The first field named <paramref name="name"/> as a milter sees its value (see <see cref="ToMimeHeaders"/>), or null.</summary>
    public static string? GetRawValue(this HeaderList headers, string name)
    {
        int index = headers.IndexOf(name);
        return index < 0 ? null : RawValueText(headers[index]);
    }

    private static string RawValueText(Header header) =>
        MimeKit.Header.Unfold(Encoding.UTF8.GetString(header.RawValue)).Trim(' ', '\t', '\r', '\n');
}

/// <summary>Writes messages with CRLF line ends (RFC 5322 §2.1), keeping header fields byte for byte otherwise.</summary>
public static class MessageWriter
{
    private static readonly FormatOptions s_crlf = new() { NewLineFormat = NewLineFormat.Dos };

    /// <summary>Writes every field untouched except that a bare LF becomes CRLF, then the empty line.</summary>
    public static void WriteHeader(IEnumerable<Header> fields, Stream output) => WriteHeader(fields, [], output);

    /// <summary>Writes <paramref name="fields"/> untouched (bare LF becomes CRLF), then <paramref name="added"/> with
    /// their values as given (as a milter's ADDHEADER puts them into the message), then the empty line.</summary>
    public static void WriteHeader(IEnumerable<Header> fields, IEnumerable<MimeHeader> added, Stream output)
    {
        var all = new HeaderList();
        foreach (Header field in fields)
        {
            if (field.RawValue is [.., (byte)'\n'])
            {
                all.Add(field);
            }
            else
            {
                // The last field of a header-only message may lack its line end; the empty line must still follow.
                Header ended = field.Clone();
                ended.SetRawValue([.. field.RawValue, (byte)'\n']);
                all.Add(ended);
            }
        }

        foreach (MimeHeader header in added)
        {
            var field = new Header(header.Name, string.Empty);
            field.SetRawValue(Encoding.UTF8.GetBytes(" " + header.Value + "\n"));
            all.Add(field);
        }

        all.WriteTo(s_crlf, output);
    }
}
