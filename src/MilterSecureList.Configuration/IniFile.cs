using System.Text;

namespace MilterSecureList.Configuration;

/// <summary>
/// A parsed milter.ini: <c>[Section]</c> headers and <c>Key = value</c> lines, each remembered with its line
/// number so that every problem, from a malformed line to a bad value found later by a typed getter, is
/// reported as <c>FILE:LINE: [Section] Key: problem</c>. Comment lines start with ';' or '#'. Section and key
/// names are case-insensitive; a value in double quotes loses the quotes. A key set twice in a section and a
/// line that is neither a header nor <c>Key = value</c> are errors, not silently resolved.
/// </summary>
public sealed class IniFile
{
    /// <summary>A configuration file is a few kilobytes; anything past this is not one (e.g. /dev/zero).</summary>
    public const int MaxBytes = 1 << 20;

    private readonly Dictionary<string, IniSection> _sections = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<IniSection> _order = [];

    private IniFile(string path) => Path = path;

    /// <summary>The path as the user gave it; it starts every error message.</summary>
    public string Path { get; }

    /// <summary>The sections in file order (a header repeated later continues the same section).</summary>
    public IReadOnlyList<IniSection> Sections => _order;

    /// <summary>Reads and parses PATH; throws <see cref="ConfigurationException"/> with one line.</summary>
    public static IniFile Load(string path)
    {
        string text;
        try
        {
            if (!File.Exists(path))
            {
                throw new ConfigurationException($"{path}: file not found");
            }

            text = ReadBounded(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"{path}: cannot read: {e.Message.ReplaceLineEndings(" ")}");
        }

        return Parse(text, path);
    }

    /// <summary>Parses TEXT; PATH only names the file in messages.</summary>
    public static IniFile Parse(string text, string path)
    {
        var file = new IniFile(path);
        IniSection? current = null;
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int number = i + 1;
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] is ';' or '#')
            {
                continue;
            }

            if (line[0] == '[')
            {
                if (line[^1] != ']' || line.Length < 3)
                {
                    throw new ConfigurationException($"{path}:{number}: {Shorten(line)}: a section header is [Name]");
                }

                current = file.Open(line[1..^1].Trim(), number);
                continue;
            }

            int eq = line.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? line : line[..eq].Trim();
            if (current is null)
            {
                throw new ConfigurationException($"{path}:{number}: {Shorten(key)}: key outside any section (put it under its [Section] header)");
            }

            if (eq <= 0 || key.Length == 0)
            {
                throw current.ErrorAt(number, Shorten(key), "not a 'Key = value' line");
            }

            string value = line[(eq + 1)..].Trim();
            if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
            {
                value = value[1..^1];
            }

            current.Add(key, value, number);
        }

        return file;
    }

    /// <summary>The named section; an absent one is empty, so every key takes its default.</summary>
    public IniSection Section(string name) =>
        _sections.TryGetValue(name, out IniSection? s) ? s : new IniSection(Path, name, 0);

    /// <summary>Refuses sections no options class reads (usually a misspelt header).</summary>
    public void RejectUnknownSections(IEnumerable<string> known)
    {
        var names = new HashSet<string>(known, StringComparer.OrdinalIgnoreCase);
        foreach (IniSection section in _order)
        {
            if (!names.Contains(section.Name))
            {
                throw new ConfigurationException($"{Path}:{section.Line}: [{section.Name}]: unknown section (known: {string.Join(", ", names)})");
            }
        }
    }

    private IniSection Open(string name, int line)
    {
        if (!_sections.TryGetValue(name, out IniSection? section))
        {
            section = new IniSection(Path, name, line);
            _sections.Add(name, section);
            _order.Add(section);
        }

        return section;
    }

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "...";

    /// <summary>Reads at most <see cref="MaxBytes"/>: a device or a huge file is refused, never read whole.</summary>
    private static string ReadBounded(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        byte[] buffer = new byte[MaxBytes + 1];
        int total = 0;
        int n;
        while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
        {
            total += n;
        }

        if (total > MaxBytes)
        {
            throw new ConfigurationException($"{path}: larger than {MaxBytes / 1024} KiB, not a configuration file");
        }

        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, total).TrimStart('\uFEFF');
        }
        catch (DecoderFallbackException)
        {
            throw new ConfigurationException($"{path}: not UTF-8 text");
        }
    }
}
