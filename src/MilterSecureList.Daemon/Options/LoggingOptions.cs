namespace MilterSecureList.Daemon.Options;

/// <summary>[Logging]: where log lines go and how many.</summary>
public sealed class LoggingOptions : OptionsSection
{
    public override string SectionName => "Logging";

    /// <summary>trace | debug | info | warn | error.</summary>
    public string Level { get; private set; } = "info";

    /// <summary>Also write to this file (empty: standard error only, which journald collects).</summary>
    public string File { get; private set; } = string.Empty;

    public override void Load(IniSection section)
    {
        Level = section.GetChoice("Level", Level, "trace", "debug", "info", "warn", "error");
        File = section.GetString("File", string.Empty);
        if (File.Length > 0)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(File));
            if (dir is null || !System.IO.Directory.Exists(dir))
            {
                throw section.Error("File", $"directory of '{File}' does not exist");
            }
        }
    }
}
