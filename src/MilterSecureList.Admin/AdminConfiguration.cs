using Microsoft.Extensions.Configuration;
using MilterSecureList.Directory;

namespace MilterSecureList.Admin;

/// <summary>The parts of <c>milter.ini</c> the CLI needs: [Directory] and [Keys].</summary>
public sealed class AdminConfiguration
{
    public const string DefaultPath = "/etc/securelist/milter.ini";

    private AdminConfiguration(string path, IConfiguration configuration, DirectoryOptions directory, KeysOptions keys)
    {
        Path = path;
        Configuration = configuration;
        Directory = directory;
        Keys = keys;
    }

    public string Path { get; }

    /// <summary>The whole file, for verbs added later that read other sections.</summary>
    public IConfiguration Configuration { get; }

    public DirectoryOptions Directory { get; }

    public KeysOptions Keys { get; }

    /// <summary>Reads and validates; any problem is a one-line <see cref="DirectoryException"/>.</summary>
    public static AdminConfiguration Load(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"configuration file {path} not found (use --config FILE)");
        }

        IConfiguration configuration;
        try
        {
            configuration = new ConfigurationBuilder().AddIniFile(full, optional: false, reloadOnChange: false).Build();
        }
        catch (InvalidDataException e)
        {
            // The INI provider wraps the parser's FormatException ("Unrecognized line format: ...").
            string detail = (e.InnerException ?? e).Message.ReplaceLineEndings(" ");
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{path}: not a valid INI file: {detail}", e);
        }
        catch (FormatException e)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{path}: not a valid INI file: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        catch (IOException e)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{path}: {e.Message}", e);
        }

        var problems = new List<string>();
        DirectoryOptions directory = DirectoryOptions.Bind(key => configuration[$"{DirectoryOptions.SectionName}:{key}"], problems);
        KeysOptions keys = KeysOptions.Bind(key => configuration[$"{KeysOptions.SectionName}:{key}"]);
        problems.AddRange(directory.Validate());
        problems.AddRange(keys.Validate());
        if (problems.Count > 0)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{path}: {problems[0]}");
        }

        return new AdminConfiguration(path, configuration, directory, keys);
    }
}
