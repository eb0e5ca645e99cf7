using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace MilterSecureList.Daemon.Options;

/// <summary>
/// Typed, validating access to one INI section. Every getter names the key in its error
/// (<c>file: [Section] Key: problem</c>) and records the key as known, so a misspelt key is reported too.
/// </summary>
public sealed class IniSection
{
    private readonly IConfigurationSection _section;
    private readonly string _file;
    private readonly HashSet<string> _known = new(StringComparer.OrdinalIgnoreCase);

    public IniSection(string file, string name, IConfigurationSection section)
    {
        _file = file;
        Name = name;
        _section = section;
    }

    public string Name { get; }

    public ConfigurationException Error(string key, string problem) => new($"{_file}: [{Name}] {key}: {problem}");

    public string GetString(string key, string defaultValue)
    {
        string? raw = Raw(key);
        return raw ?? defaultValue;
    }

    public int GetInt(string key, int defaultValue, int min, int max)
    {
        string? raw = Raw(key);
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
        string? raw = Raw(key);
        if (raw is null)
        {
            return defaultValue;
        }

        long factor = 1;
        string digits = raw;
        char last = raw.Length > 0 ? char.ToUpperInvariant(raw[^1]) : ' ';
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
        string? raw = Raw(key);
        if (raw is null)
        {
            return defaultValue;
        }

        (string digits, double ms) = raw switch
        {
            _ when raw.EndsWith("ms", StringComparison.OrdinalIgnoreCase) => (raw[..^2], 1.0),
            _ when raw.EndsWith('s') || raw.EndsWith('S') => (raw[..^1], 1000.0),
            _ when raw.EndsWith('m') || raw.EndsWith('M') => (raw[..^1], 60_000.0),
            _ when raw.EndsWith('h') || raw.EndsWith('H') => (raw[..^1], 3_600_000.0),
            _ => (raw, 1000.0),
        };
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
        {
            throw Error(key, $"'{raw}' is not a duration (e.g. 500ms, 30s, 5m, 1h)");
        }

        TimeSpan value = TimeSpan.FromMilliseconds(n * ms);
        if (value < min || value > max)
        {
            throw Error(key, $"'{raw}' must be from {min.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s to {max.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s");
        }

        return value;
    }

    /// <summary>One of a fixed set of words (case-insensitive); returns the word as listed.</summary>
    public string GetChoice(string key, string defaultValue, params string[] choices)
    {
        string? raw = Raw(key);
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
        string? raw = Raw(key);
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

    /// <summary>Reports any key in the section that no getter asked for (a typo, or a key from another section).</summary>
    public void RejectUnknownKeys()
    {
        foreach (IConfigurationSection child in _section.GetChildren())
        {
            if (!_known.Contains(child.Key))
            {
                throw Error(child.Key, "unknown key");
            }
        }
    }

    private string? Raw(string key)
    {
        _known.Add(key);
        string? raw = _section[key]?.Trim();
        return string.IsNullOrEmpty(raw) ? null : raw;
    }
}
