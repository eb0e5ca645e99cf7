namespace MilterSecureList.Directory;

/// <summary>Which database holds the list directory.</summary>
public enum DirectoryProvider
{
    Sqlite,
    Postgres,
}

/// <summary>
/// The <c>[Directory]</c> section of <c>milter.ini</c>. Bound by the daemon's and the CLI's config
/// loader; call <see cref="Validate"/> before use.
/// </summary>
public sealed class DirectoryOptions
{
    public const string SectionName = "Directory";

    /// <summary><c>sqlite</c> (embedded default) or <c>postgres</c> (several milter nodes).</summary>
    public DirectoryProvider Provider { get; set; } = DirectoryProvider.Sqlite;

    /// <summary>SQLite database file.</summary>
    public string Path { get; set; } = "/var/lib/securelist/lists.db";

    /// <summary>Npgsql connection string; required when <see cref="Provider"/> is postgres.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// How often a running daemon polls the directory's change counter. A CLI change is seen
    /// within this many seconds (the product promises 5 s, so the maximum is 5).
    /// </summary>
    public int CacheRefreshSeconds { get; set; } = 2;

    /// <summary>
    /// Binds from a key lookup (e.g. <c>key =&gt; configuration["Directory:" + key]</c>), so the
    /// daemon and the CLI share one set of parse rules without this project depending on
    /// Microsoft.Extensions.Configuration. Unparsable values are added to PROBLEMS.
    /// </summary>
    public static DirectoryOptions Bind(Func<string, string?> value, List<string> problems)
    {
        var options = new DirectoryOptions();
        if (value(nameof(Provider)) is { } provider)
        {
            switch (provider.Trim().ToLowerInvariant())
            {
                case "sqlite":
                    options.Provider = DirectoryProvider.Sqlite;
                    break;
                case "postgres" or "postgresql":
                    options.Provider = DirectoryProvider.Postgres;
                    break;
                default:
                    problems.Add($"[Directory] Provider: '{provider}' is not one of sqlite, postgres");
                    break;
            }
        }

        options.Path = value(nameof(Path))?.Trim() ?? options.Path;
        options.ConnectionString = value(nameof(ConnectionString))?.Trim() ?? options.ConnectionString;
        if (value(nameof(CacheRefreshSeconds)) is { } refresh)
        {
            if (int.TryParse(refresh.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int seconds))
            {
                options.CacheRefreshSeconds = seconds;
            }
            else
            {
                problems.Add($"[Directory] CacheRefreshSeconds: '{refresh}' is not a whole number of seconds");
            }
        }

        return options;
    }

    /// <summary>Problems as "[Directory] Key: problem" lines; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        switch (Provider)
        {
            case DirectoryProvider.Sqlite:
                if (string.IsNullOrWhiteSpace(Path))
                {
                    problems.Add("[Directory] Path: required when Provider = sqlite");
                }
                break;
            case DirectoryProvider.Postgres:
                if (string.IsNullOrWhiteSpace(ConnectionString))
                {
                    problems.Add("[Directory] ConnectionString: required when Provider = postgres");
                }
                break;
            default:
                problems.Add($"[Directory] Provider: '{Provider}' is not one of sqlite, postgres");
                break;
        }

        if (CacheRefreshSeconds is < 1 or > 5)
        {
            problems.Add($"[Directory] CacheRefreshSeconds: {CacheRefreshSeconds} is outside 1..5 (changes must be seen within 5 s)");
        }

        return problems;
    }
}
