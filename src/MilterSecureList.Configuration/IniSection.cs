using System.Globalization;

namespace MilterSecureList.Configuration;

/// <summary>
/// Typed, validating access to one INI section. Every getter names the key and its line in its error
/// (<c>FILE:LINE: [Section] Key: problem</c>) and records the key as read, so that
/// <see cref="RejectUnknownKeys"/> can report a misspelt key. An absent key takes the default; a key that is
/// present but empty is an error for typed values (remove the line to get the default).
/// </summary>
public sealed class IniSection
{
    private readonly string _file;
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<Entry> _order = [];
    private readonly HashSet<string> _known = new(StringComparer.OrdinalIgnoreCase);

    internal IniSection(string file, string name, int line)
    {
        _file = file;
        Name = name;
        Line = line;
    }

    public string Name { get; }

    /// <summary>Line of the section header; 0 when the file has no such section.</summary>
    public int Line { get; }

    /// <summary>An error about KEY, located at the key's line (or the section header when the key is absent).</summary>
    public ConfigurationException Error(string key, string problem) =>
        ErrorAt(_entries.TryGetValue(key, out Entry? e) ? e.Line : Line, key, problem);

    internal ConfigurationException ErrorAt(int line, string key, string problem) =>
        new($"{_file}{(line > 0 ? ":" + line.ToString(CultureInfo.InvariantCulture) : "")}: [{Name}] {key}: {problem}");

    /// <summary>The trimmed value, or null when the key is absent or empty.</summary>
    public string? Value(string key) => Raw(key) is { Length: > 0 } v ? v : null;

    /// <summary>True when KEY appears in the section, even with an empty value.</summary>
    public bool Contains(string key) => _entries.ContainsKey(key);

    public string GetString(string key, string defaultValue) => Value(key) ?? defaultValue;

    /// <summary>A string that, when present, must not be empty (an empty value is a mistake, not "the default").</summary>
    public string GetNonEmptyString(string key, string defaultValue) => Typed(key) ?? defaultValue;

    public int GetInt(string key, int defaultValue, int min, int max)
    {
        string? raw = Typed(key);
        if (raw is null)
        {
            return defaultValue;
        }

        if (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
        {
            throw Error(key, $"'{raw}' is not a whole number from {min} to {max}");
        }

        return v;
    }

    /// <summary>A byte size: a number with an optional K, M or G suffix (powers of 1024), e.g. 64K, 10M.</summary>
    public long GetSize(string key, long defaultValue, long min, long max)
    {
        string? raw = Typed(key);
        if (raw is null)
        {
            return defaultValue;
        }

        long factor = 1;
        string digits = raw;
        char last = char.ToUpperInvariant(raw[^1]);
        if (last is 'K' or 'M' or 'G')
        {
            factor = last switch { 'K' => 1024L, 'M' => 1024L * 1024, _ => 1024L * 1024 * 1024 };
            digits = raw[..^1];
        }

        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > max / factor || n * factor < min || n * factor > max)
        {
            throw Error(key, $"'{raw}' is not a size from {min} to {max} bytes (a number with optional K, M or G)");
        }

        return n * factor;
    }

    /// <summary>A duration: a number with a unit ms, s, m or h (plain numbers are seconds), e.g. 30s, 5m.</summary>
    public TimeSpan GetDuration(string key, TimeSpan defaultValue, TimeSpan min, TimeSpan max)
    {
        string? raw = Typed(key);
        if (raw is null)
        {
            return defaultValue;
        }

        if (!TryParseDuration(raw, out TimeSpan value))
        {
            throw Error(key, $"'{raw}' is not a duration (e.g. 500ms, 30s, 5m, 1h)");
        }

        if (value < min || value > max)
        {
            throw Error(key, $"'{raw}' must be from {Seconds(min)}s to {Seconds(max)}s");
        }

        return value;
    }

    /// <summary>A duration in whole seconds (with or without the 's' unit), for keys an options class keeps as an int.</summary>
    public int GetSeconds(string key, int defaultValue, int min, int max)
    {
        TimeSpan value = GetDuration(key, TimeSpan.FromSeconds(defaultValue), TimeSpan.FromSeconds(min), TimeSpan.FromSeconds(max));
        if (value.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            throw Error(key, $"'{Raw(key)}' must be whole seconds");
        }

        return (int)value.TotalSeconds;
    }

    /// <summary>Parses 500ms, 30s, 5m, 1h or a plain number of seconds.</summary>
    public static bool TryParseDuration(string raw, out TimeSpan value)
    {
        value = default;
        (string digits, double ms) = raw switch
        {
            _ when raw.EndsWith("ms", StringComparison.OrdinalIgnoreCase) => (raw[..^2], 1.0),
            _ when raw.EndsWith('s') || raw.EndsWith('S') => (raw[..^1], 1000.0),
            _ when raw.EndsWith('m') || raw.EndsWith('M') => (raw[..^1], 60_000.0),
            _ when raw.EndsWith('h') || raw.EndsWith('H') => (raw[..^1], 3_600_000.0),
            _ => (raw, 1000.0),
        };
        if (!long.TryParse(digits.TrimEnd(), NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > 100L * 365 * 24 * 3600 * 1000)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(n * ms);
        return true;
    }

    /// <summary>One of a fixed set of words (case-insensitive); returns the word as listed.</summary>
    public string GetChoice(string key, string defaultValue, params string[] choices)
    {
        string? raw = Typed(key);
        if (raw is null)
        {
            return defaultValue;
        }

        foreach (string c in choices)
        {
            if (string.Equals(c, raw, StringComparison.OrdinalIgnoreCase))
            {
                return c;
            }
        }

        throw Error(key, $"'{raw}' is not one of: {string.Join(", ", choices)}");
    }

    /// <summary>An octal file mode such as 0660.</summary>
    public UnixFileMode GetOctalMode(string key, UnixFileMode defaultValue)
    {
        string? raw = Typed(key);
        if (raw is null)
        {
            return defaultValue;
        }

        int mode = 0;
        bool ok = raw.Length is >= 3 and <= 4;
        foreach (char c in raw)
        {
            ok &= c is >= '0' and <= '7';
            mode = (mode * 8) + (c - '0');
        }

        if (!ok || mode > 0x1FF)
        {
            throw Error(key, $"'{raw}' is not an octal file mode such as 0660");
        }

        return (UnixFileMode)mode;
    }

    /// <summary>
    /// Throws the first of PROBLEMS, which the option binders of the Directory and Filter layers word as
    /// "[Section] Key: problem", located at the key's line.
    /// </summary>
    public void ThrowFirst(IReadOnlyList<string> problems)
    {
        if (problems.Count == 0)
        {
            return;
        }

        string p = problems[0];
        int close = p.IndexOf("] ", StringComparison.Ordinal);
        int colon = p.IndexOf(": ", StringComparison.Ordinal);
        throw close > 0 && colon > close
            ? Error(p[(close + 2)..colon], p[(colon + 2)..])
            : ErrorAt(Line, "", p);
    }

    /// <summary>Reports any key in the section that no getter asked for (a typo, or a key from another section).</summary>
    public void RejectUnknownKeys()
    {
        foreach (Entry entry in _order)
        {
            if (!_known.Contains(entry.Key))
            {
                throw ErrorAt(entry.Line, entry.Key, "unknown key");
            }
        }
    }

    internal void Add(string key, string value, int line)
    {
        if (_entries.TryGetValue(key, out Entry? first))
        {
            throw ErrorAt(line, key, $"set twice (first on line {first.Line}); keep one");
        }

        var entry = new Entry(key, value, line);
        _entries.Add(key, entry);
        _order.Add(entry);
    }

    private string? Raw(string key)
    {
        _known.Add(key);
        return _entries.TryGetValue(key, out Entry? e) ? e.Value.Trim() : null;
    }

    /// <summary>A typed value: absent is null (the default); present and empty is an error.</summary>
    private string? Typed(string key)
    {
        string? raw = Raw(key);
        if (raw is { Length: 0 })
        {
            throw Error(key, "empty value; remove the line to use the default");
        }

        return raw;
    }

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString(CultureInfo.InvariantCulture);

    private sealed record Entry(string Key, string Value, int Line);
}
