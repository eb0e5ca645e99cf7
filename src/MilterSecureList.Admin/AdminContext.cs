using System.CommandLine;
using MilterSecureList.Configuration;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using Spectre.Console;

namespace MilterSecureList.Admin;

/// <summary>
/// What every verb needs: output streams, the clock, the global <c>--config</c> option, and
/// the error policy (one line on stderr; exit 2 for user errors, 1 for other failures).
/// </summary>
public sealed class AdminContext
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitUsage = 2;

    public AdminContext(TextWriter output, TextWriter error, TimeProvider time, bool interactive)
    {
        Output = output;
        Error = error;
        Time = time;
        Console = CreateConsole(output, interactive);
        ErrorConsole = CreateConsole(error, interactive);
        ConfigOption = new Option<string>("--config")
        {
            Description = $"Configuration file (default {AdminConfiguration.DefaultPath})",
            Recursive = true,
            DefaultValueFactory = _ => AdminConfiguration.DefaultPath,
        };
    }

    public TextWriter Output { get; }

    public TextWriter Error { get; }

    public TimeProvider Time { get; }

    /// <summary>Tables and text for stdout.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>Progress bars go to stderr so stdout stays parseable.</summary>
    public IAnsiConsole ErrorConsole { get; }

    /// <summary>The global <c>--config FILE</c> option (accepted before or after the verb).</summary>
    public Option<string> ConfigOption { get; }

    private static IAnsiConsole CreateConsole(TextWriter writer, bool interactive)
    {
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        if (!interactive)
        {
            // Captured or piped output: do not wrap addresses at 80 columns.
            console.Profile.Width = 240;
        }

        return console;
    }

    public AdminConfiguration LoadConfiguration(ParseResult parseResult) =>
        AdminConfiguration.Load(parseResult.GetValue(ConfigOption) ?? AdminConfiguration.DefaultPath);

    /// <summary>Opens the directory named by the configuration for one verb.</summary>
    public AdminSession OpenSession(ParseResult parseResult)
    {
        AdminConfiguration configuration = LoadConfiguration(parseResult);
        return new AdminSession(configuration, OpenDirectory(configuration));
    }

    /// <summary>
    /// The daemon's directory wiring (<see cref="DirectoryServices"/>) for one verb, after handing a new SQLite
    /// file to the database directory's owner. The key directory is not required: the first key written creates it.
    /// </summary>
    public DirectoryServices OpenDirectory(AdminConfiguration configuration)
    {
        HandOverNewDatabase(configuration.Directory);
        return DirectoryServices.Open(configuration.Directory, configuration.Keys, Time, requireKeyDirectory: false);
    }

    /// <summary>
    /// Root running the first command of a fresh installation would create the SQLite file as root, and the
    /// daemon (the owner of the database's directory, /var/lib/securelist) could not open it for writing. An
    /// empty file is a valid empty database: create it for that owner before SQLite opens it.
    /// </summary>
    private static void HandOverNewDatabase(DirectoryOptions directory)
    {
        if (directory.Provider != DirectoryProvider.Sqlite || !UnixFile.IsRoot || string.IsNullOrEmpty(directory.Path) || File.Exists(directory.Path))
        {
            return;
        }

        string? parent = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(directory.Path));
        if (parent is null || !UnixFile.TryStat(parent, out uint uid, out uint gid, out _) || uid == 0)
        {
            return;
        }

        var create = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead,
        };
        using (new FileStream(directory.Path, create))
        {
        }

        UnixFile.ChangeOwner(directory.Path, uid, gid);
    }

    /// <summary>Runs a verb body under the CLI's error policy.</summary>
    public int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (DirectoryException e)
        {
            Error.WriteLine($"securelist: {Printable(e.Message)}");
            return e.IsUserError ? ExitUsage : ExitFailure;
        }
        catch (UsageException e)
        {
            Error.WriteLine($"securelist: {Printable(e.Message)}");
            return ExitUsage;
        }
        catch (ConfigurationException e)
        {
            Error.WriteLine($"securelist: {Printable(e.Message)}");
            return ExitUsage;
        }
        catch (Exception e)
        {
            Error.WriteLine($"securelist: unexpected {e.GetType().Name}: {Printable(e.Message)}");
            return ExitFailure;
        }
    }

    /// <summary>
    /// One printable line: control characters (a newline in an address given on the command line) are shown
    /// escaped, so an error is always exactly one line and cannot forge a second.
    /// </summary>
    public static string Printable(string text)
    {
        if (!text.Any(char.IsControl))
        {
            return text;
        }

        var sb = new System.Text.StringBuilder(text.Length + 8);
        foreach (char c in text)
        {
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\x{(int)c:x2}",
                _ => c.ToString(),
            });
        }

        return sb.ToString();
    }

    /// <summary>Escapes text for Spectre markup (addresses contain no markup, but problems might).</summary>
    public static string Markup(string? text) => Spectre.Console.Markup.Escape(text ?? string.Empty);
}

/// <summary>A command-line mistake the parser cannot catch (e.g. two options that exclude each other).</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>The open directory for one CLI invocation.</summary>
public sealed class AdminSession(AdminConfiguration configuration, DirectoryServices services) : IDisposable
{
    public AdminConfiguration Configuration { get; } = configuration;

    public SqlDirectoryStore Store => services.Store;

    public ListKeyStore Keys => services.Keys;

    public ListAdministration Administration { get; } = services.CreateAdministration();

    public ListDirectory Directory => services.Lists;

    public void Dispose() => services.Dispose();
}
