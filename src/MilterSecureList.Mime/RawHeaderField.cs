using System.Text;

namespace MilterSecureList.Mime;

/// <summary>
/// One header field of a message file, kept as the exact input bytes (name, colon, value, folding and
/// line ends) so it can be written back untouched, plus the name and the unfolded value for parsing.
/// </summary>
public sealed class RawHeaderField
{
    internal RawHeaderField(string name, ReadOnlyMemory<byte> rawBytes, int valueStart)
    {
        Name = name;
        RawBytes = rawBytes;
        Value = UnfoldValue(rawBytes.Span[valueStart..]);
    }

    /// <summary>The field name as written (case kept).</summary>
    public string Name { get; }

    /// <summary>The whole field as read, including every line end (LF or CRLF as in the input).</summary>
    public ReadOnlyMemory<byte> RawBytes { get; }

    /// <summary>
    /// The value with folding removed (RFC 5322 §2.2.3) and outer white space trimmed. Decoded as UTF-8
    /// (RFC 6532); invalid bytes become U+FFFD here but stay intact in <see cref="RawBytes"/>.
    /// </summary>
    public string Value { get; }

    public bool Is(string name) => string.Equals(Name, name, StringComparison.OrdinalIgnoreCase);

    public MimeHeader ToMimeHeader() => new(Name, Value);

    public override string ToString() => Name + ": " + Value;

    private static string UnfoldValue(ReadOnlySpan<byte> raw)
    {
        Span<byte> buffer = raw.Length <= 1024 ? stackalloc byte[raw.Length] : new byte[raw.Length];
        int n = 0;
        foreach (byte b in raw)
        {
            if (b is not ((byte)'\r' or (byte)'\n'))
            {
                buffer[n++] = b;
            }
        }

        return Encoding.UTF8.GetString(buffer[..n]).Trim(' ', '\t');
    }
}

/// <summary>The header block of a message: its fields in order.</summary>
public sealed class MessageHeader : IReadOnlyList<RawHeaderField>
{
    private readonly List<RawHeaderField> _fields;

    internal MessageHeader(List<RawHeaderField> fields, int length)
    {
        _fields = fields;
        Length = length;
    }

    /// <summary>Bytes of the header block as read, including the empty line that ends it.</summary>
    public int Length { get; }

    public int Count => _fields.Count;

    public RawHeaderField this[int index] => _fields[index];

    /// <summary>The unfolded value of the first field named <paramref name="name"/>, or null.</summary>
    public string? GetValue(string name) => _fields.Find(f => f.Is(name))?.Value;

    public IEnumerable<RawHeaderField> GetAll(string name) => _fields.Where(f => f.Is(name));

    /// <summary>The fields as (name, value) pairs, the shape <see cref="SmimeClassifier"/> takes.</summary>
    public IEnumerable<MimeHeader> ToMimeHeaders() => _fields.Select(f => f.ToMimeHeader());

    public IEnumerator<RawHeaderField> GetEnumerator() => _fields.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
