using MilterSecureList.Configuration;
using MilterSecureList.Directory;
using MilterSecureList.Filter;

namespace MilterSecureList.Admin;

/// <summary>
/// The parts of <c>milter.ini</c> the CLI needs, read with the daemon's INI reader: [Directory], [Keys],
/// [Policy] and [Milter] MaxMessageSize and MaxHeaderBytes. Problems are <see cref="ConfigurationException"/>s worded like the
/// daemon's (<c>FILE:LINE: [Section] Key: problem</c>). Sections and keys the CLI does not use are left to
/// <c>securelist-milter --check-config</c>; syntax errors (a line without '=', a key set twice) are refused here too.
/// </summary>
public sealed class AdminConfiguration
{
    public const string DefaultPath = "/etc/securelist/milter.ini";

    private AdminConfiguration(string path, IniFile ini, DirectoryOptions directory, KeysOptions keys)
    {
        Path = path;
        Ini = ini;
        Directory = directory;
        Keys = keys;
    }

    public string Path { get; }

    /// <summary>The whole file, for verbs that read other sections.</summary>
    public IniFile Ini { get; }

    public DirectoryOptions Directory { get; }

    public KeysOptions Keys { get; }

    /// <summary>Reads and validates; any problem is a one-line <see cref="ConfigurationException"/>.</summary>
    public static AdminConfiguration Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigurationException($"configuration file {path} not found (use --config FILE)");
        }

        IniFile ini = IniFile.Load(path);
        IniSection directorySection = ini.Section(DirectoryOptions.SectionName);
        var problems = new List<string>();
        DirectoryOptions directory = DirectoryOptions.Bind(directorySection.Value, problems);
        problems.AddRange(directory.Validate());
        directorySection.ThrowFirst(problems);

        IniSection keysSection = ini.Section(KeysOptions.SectionName);
        KeysOptions keys = KeysOptions.Bind(keysSection.Value);
        keysSection.ThrowFirst(keys.Validate());
        return new AdminConfiguration(path, ini, directory, keys);
    }

    /// <summary>The list filter's [Policy], bound as the daemon binds it, with the daemon's message size limit.</summary>
    public PolicyOptions Policy()
    {
        IniSection section = Ini.Section(PolicyOptions.Section);
        var problems = new List<string>();
        PolicyOptions policy = PolicyOptions.Bind(section.Value, problems);
        section.ThrowFirst(problems);
        policy.MaxCmsBytes = MaxMessageSize;
        return policy;
    }

    /// <summary>[Milter] MaxMessageSize, the daemon's limit on a message (and on its CMS content).</summary>
    public long MaxMessageSize => MessageSizeLimit.Read(Ini.Section(MessageSizeLimit.Section));

    /// <summary>[Milter] MaxHeaderBytes, the daemon's limit on a message's header.</summary>
    public long MaxHeaderBytes => HeaderSizeLimit.Read(Ini.Section(HeaderSizeLimit.Section));
}
