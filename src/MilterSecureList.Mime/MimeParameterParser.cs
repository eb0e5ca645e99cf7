using System.Globalization;
using System.Text;

namespace MilterSecureList.Mime;

/// <summary>
/// The lexer shared by Content-Type and Content-Disposition: tokens, quoted strings and comments
/// (RFC 2045 §5.1, RFC 822 §3.3) and parameter lists with RFC 2231 continuations and charsets.
/// </summary>
internal ref struct MimeParameterParser
{
    // RFC 2045 §5.1: tspecials := "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / "\" / <"> / "/" / "[" / "]" / "?" / "="
    private const string TSpecials = "()<>@,;:\\\"/[]?=";

    // Nested comments deeper than this are treated as garbage; bounds the work on hostile input.
    private const int MaxCommentDepth = 32;

    // A parameter list longer than this is not a real message header; bounds memory on hostile input.
    private const int MaxParameters = 256;

    private readonly ReadOnlySpan<char> _text;
    private int _pos;

    public MimeParameterParser(ReadOnlySpan<char> text)
    {
        _text = text;
        _pos = 0;
    }

    public readonly bool AtEnd => _pos >= _text.Length;

    /// <summary>Folding (RFC 5322 §2.2.3) is CRLF (or Postfix's bare LF) before white space; dropping CR and LF unfolds.</summary>
    public static string Unfold(string value)
    {
        if (value.AsSpan().IndexOfAny('\r', '\n') < 0)
        {
            return value;
        }

        return value.Replace("\r", string.Empty, StringComparison.Ordinal).Replace("\n", string.Empty, StringComparison.Ordinal);
    }

    public static bool IsTokenChar(char c) => c > ' ' && c < 127 && !TSpecials.Contains(c, StringComparison.Ordinal);

    /// <summary>Skips white space and (nested) comments. Returns false on an unterminated or too deep comment.</summary>
    public bool SkipCfws()
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c is ' ' or '\t' or '\r' or '\n')
            {
                _pos++;
            }
            else if (c == '(')
            {
                if (!SkipComment())
                {
                    return false;
                }
            }
            else
            {
                break;
            }
        }

        return true;
    }

    private bool SkipComment()
    {
        int depth = 0;
        while (_pos < _text.Length)
        {
            char c = _text[_pos++];
            if (c == '\\')
            {
                _pos++; // quoted-pair
            }
            else if (c == '(')
            {
                if (++depth > MaxCommentDepth)
                {
                    return false;
                }
            }
            else if (c == ')')
            {
                if (--depth == 0)
                {
                    return true;
                }
            }
        }

        return false;
    }

    public bool TryConsume(char c)
    {
        if (_pos < _text.Length && _text[_pos] == c)
        {
            _pos++;
            return true;
        }

        return false;
    }

    public string ReadToken()
    {
        int start = _pos;
        while (_pos < _text.Length && IsTokenChar(_text[_pos]))
        {
            _pos++;
        }

        return _text[start.._pos].ToString();
    }

    /// <summary>
    /// Reads "; name=value" pairs to the end. Values are a token, a quoted string, or (leniently,
    /// because real mailers write <c>name=smime p7m</c>-style junk) anything up to the next ';'.
    /// Returns the parameters after RFC 2231 reassembly, names in lower case.
    /// </summary>
    public bool TryReadParameters(out Dictionary<string, string> parameters)
    {
        parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var raw = new List<RawParameter>();
        while (true)
        {
            if (!SkipCfws())
            {
                return false;
            }

            if (AtEnd)
            {
                break;
            }

            if (!TryConsume(';'))
            {
                return false;
            }

            if (!SkipCfws())
            {
                return false;
            }

            if (AtEnd)
            {
                break; // a trailing ';' is common and harmless
            }

            if (_text[_pos] == ';')
            {
                continue;
            }

            string name = ReadToken();
            if (name.Length == 0 || !SkipCfws() || !TryConsume('=') || !SkipCfws())
            {
                return false;
            }

            string value;
            if (_pos < _text.Length && _text[_pos] == '"')
            {
                if (!TryReadQuotedString(out value))
                {
                    return false;
                }
            }
            else
            {
                value = ReadLenientValue();
            }

            if (raw.Count >= MaxParameters)
            {
                return false;
            }

            raw.Add(new RawParameter(name.ToLowerInvariant(), value));
        }

        Rfc2231.Assemble(raw, parameters);
        return true;
    }

    private bool TryReadQuotedString(out string value)
    {
        var sb = new StringBuilder();
        _pos++; // opening quote
        while (_pos < _text.Length)
        {
            char c = _text[_pos++];
            if (c == '"')
            {
                value = sb.ToString();
                return true;
            }

            if (c == '\\' && _pos < _text.Length)
            {
                c = _text[_pos++];
            }

            sb.Append(c);
        }

        value = string.Empty;
        return false;
    }

    private string ReadLenientValue()
    {
        int start = _pos;
        while (_pos < _text.Length && _text[_pos] is not (';' or '(' or '"'))
        {
            _pos++;
        }

        return _text[start.._pos].TrimEnd(" \t").ToString();
    }

    internal readonly record struct RawParameter(string Name, string Value);

    /// <summary>RFC 2231 §3 (continuations) and §4 (charset'language'percent-encoded values).</summary>
    private static class Rfc2231
    {
        public static void Assemble(List<RawParameter> raw, Dictionary<string, string> result)
        {
            // name -> section number -> (encoded?, value). Section -1 stands for the single "name*=" form.
            Dictionary<string, SortedDictionary<int, (bool Encoded, string Value)>>? extended = null;
            foreach (RawParameter p in raw)
            {
                int star = p.Name.IndexOf('*', StringComparison.Ordinal);
                if (star < 0)
                {
                    result.TryAdd(p.Name, p.Value); // the first of duplicate plain parameters wins
                    continue;
                }

                string baseName = p.Name[..star];
                string rest = p.Name[(star + 1)..];
                bool encoded = rest.EndsWith('*') || rest.Length == 0;
                string sectionText = rest.TrimEnd('*');
                int section = -1;
                if (sectionText.Length > 0
                    && !int.TryParse(sectionText, NumberStyles.None, CultureInfo.InvariantCulture, out section))
                {
                    result.TryAdd(p.Name, p.Value); // not RFC 2231 after all; keep it verbatim
                    continue;
                }

                if (baseName.Length == 0 || section > 999)
                {
                    continue;
                }

                extended ??= new Dictionary<string, SortedDictionary<int, (bool, string)>>(StringComparer.OrdinalIgnoreCase);
                if (!extended.TryGetValue(baseName, out var sections))
                {
                    sections = new SortedDictionary<int, (bool, string)>();
                    extended[baseName] = sections;
                }

                sections.TryAdd(section, (encoded, p.Value));
            }

            if (extended is null)
            {
                return;
            }

            foreach (var (name, sections) in extended)
            {
                // An RFC 2231 value overrides a plain one of the same name: agents send both so old readers get a fallback.
                result[name] = Decode(sections);
            }
        }

        private static string Decode(SortedDictionary<int, (bool Encoded, string Value)> sections)
        {
            Encoding encoding = Encoding.UTF8;
            var bytes = new List<byte>();
            bool first = true;
            int expected = sections.ContainsKey(-1) ? -1 : 0;
            foreach (var (number, (encoded, value)) in sections)
            {
                if (number != expected && !(expected == -1 && number == 0))
                {
                    break; // RFC 2231 §3: sections after a gap are ignored
                }

                expected = number + 1;
                string text = value;
                if (first && encoded)
                {
                    // RFC 2231 §4: the first encoded section starts with charset'language'
                    int q1 = text.IndexOf('\'', StringComparison.Ordinal);
                    int q2 = q1 < 0 ? -1 : text.IndexOf('\'', q1 + 1);
                    if (q2 >= 0)
                    {
                        encoding = GetEncoding(text[..q1]);
                        text = text[(q2 + 1)..];
                    }
                }

                first = false;
                if (encoded)
                {
                    PercentDecode(text, bytes);
                }
                else
                {
                    // Unencoded sections hold plain characters; keep them as they are.
                    bytes.AddRange(encoding.GetBytes(text));
                }
            }

            return encoding.GetString(bytes.ToArray());
        }

        private static void PercentDecode(string text, List<byte> bytes)
        {
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c == '%' && i + 2 < text.Length
                    && byte.TryParse(text.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
                {
                    bytes.Add(b);
                    i += 2;
                }
                else if (c < 256)
                {
                    bytes.Add((byte)c);
                }
                else
                {
                    bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                }
            }
        }

        private static Encoding GetEncoding(string charset)
        {
            if (charset.Length == 0)
            {
                return Encoding.UTF8;
            }

            try
            {
                return Encoding.GetEncoding(charset);
            }
            catch (ArgumentException)
            {
                // Unknown charset (InvariantGlobalization has only the Unicode, ASCII and Latin-1 code pages):
                // Latin-1 keeps every byte as one character, so nothing is lost.
                return Encoding.Latin1;
            }
        }
    }
}
