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
        () => new KeyReleaseSection(),
    ];

    private readonly Dictionary<Type, OptionsSection> _sections;

    private DaemonConfiguration(Dictionary<Type, OptionsSection> sections) => _sections = sections;

    public T Get<T>()
        where T : OptionsSection => (T)_sections[typeof(T)];

    /// <summary>
    /// Reads and validates <paramref name="path"/>; throws <see cref="ConfigurationException"/> with one line
    /// <c>FILE:LINE: [Section] Key: problem</c>. The same reader serves the securelist CLI (docs/design.md).
    /// </summary>
    public static DaemonConfiguration Load(string path)
    {
        IniFile ini = IniFile.Load(path);
        var sections = new Dictionary<Type, OptionsSection>();
        var known = new List<string>();
        foreach (Func<OptionsSection> create in Sections)
        {
            OptionsSection options = create();
            IniSection section = ini.Section(options.SectionName);
            options.Load(section);
            section.RejectUnknownKeys();
            sections[options.GetType()] = options;
            known.Add(options.SectionName);
        }

        ini.RejectUnknownSections(known);
        return new DaemonConfiguration(sections);
    }
}
