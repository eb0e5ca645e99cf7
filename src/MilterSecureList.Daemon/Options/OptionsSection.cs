namespace MilterSecureList.Daemon.Options;

/// <summary>
/// One INI section bound to one options class. To add a section:
/// derive from this class, read every key in <see cref="Load"/> through the <see cref="IniSection"/> getters
/// (they validate and name the key in errors), add cross-key checks there too, then add one line to
/// <see cref="DaemonConfiguration.Sections"/> and document the keys in milter.ini.example.
/// </summary>
public abstract class OptionsSection
{
    /// <summary>The INI section name, PascalCase, e.g. "Listener".</summary>
    public abstract string SectionName { get; }

    /// <summary>Reads and validates the section; throws <see cref="ConfigurationException"/> on the first problem.</summary>
    public abstract void Load(IniSection section);
}
