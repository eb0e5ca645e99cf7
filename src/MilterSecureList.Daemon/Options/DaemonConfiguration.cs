using Microsoft.Extensions.Configuration;

namespace MilterSecureList.Daemon.Options;

/// <summary>Loads milter.ini into the registered options sections and validates all of them.</summary>
public sealed class DaemonConfiguration
{
    public const string DefaultPath = "/etc/securelist/milter.ini";

    /// <summary>
    /// The registered sections, one options class each. Adding a section is one line here plus the class
    /// (see <see cref="OptionsSection"/>). Sections not listed are reported as unknown.
    /// </summary>
    public static IReadOnlyList<Func<OptionsSection>> Sections { get; } =
    [
        () => new ListenerOptions(),
        () => new MilterOptions(),
        () => new LoggingOptions(),
        () => new DirectorySection(),
        () => new KeysSection(),
        () => new PolicySection(),
        () => new NoticesSection(),
        () => new MetricsSection(),
        () => new GatewaySection(),
    ];

    private readonly Dictionary<Type, OptionsSection> _sections;

    private DaemonConfiguration(Dictionary<Type, OptionsSection> sections) => _sections = sections;

    public T Get<T>()
        where T : OptionsSection => (T)_sections[typeof(T)];

    /// <summary>Reads and validates <paramref name="path"/>; throws <see cref="ConfigurationException"/> with one line.</summary>
    public static DaemonConfiguration Load(string path)
    {
        string file = Path.GetFileName(path);
        if (!File.Exists(path))
        {
            throw new ConfigurationException($"{path}: file not found");
        }

        IConfigurationRoot root;
        try
        {
            root = new ConfigurationBuilder().AddIniFile(Path.GetFullPath(path), optional: false, reloadOnChange: false).Build();
        }
        catch (Exception ex) when (ex is FormatException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Exception inner = ex;
            while (inner.InnerException is not null)
            {
                inner = inner.InnerException;
            }

            throw new ConfigurationException($"{file}: {OneLine(inner.Message)}");
        }

        var sections = new Dictionary<Type, OptionsSection>();
        var known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (Func<OptionsSection> create in Sections)
        {
            OptionsSection options = create();
            var section = new IniSection(file, options.SectionName, root.GetSection(options.SectionName));
            options.Load(section);
            section.RejectUnknownKeys();
            sections[options.GetType()] = options;
            known.Add(options.SectionName);
        }

        foreach (IConfigurationSection child in root.GetChildren())
        {
            if (!known.Contains(child.Key))
            {
                throw new ConfigurationException(child.Value is null ? $"{file}: [{child.Key}]: unknown section" : $"{file}: {child.Key}: key outside any section");
            }
        }

        return new DaemonConfiguration(sections);
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
