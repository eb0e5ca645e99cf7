namespace MilterSecureList.Directory;

/// <summary>The <c>[Keys]</c> section of <c>milter.ini</c>: where list private keys live.</summary>
public sealed class KeysOptions
{
    public const string SectionName = "Keys";

    /// <summary>Directory of PKCS#8 PEM private-key files; mode 0700, files 0600.</summary>
    public string Directory { get; set; } = "/var/lib/securelist/keys";

    /// <summary>
    /// Optional file holding the passphrase that protects the key files (encrypted PKCS#8).
    /// Must not be readable by group or others.
    /// </summary>
    public string? PassphraseFile { get; set; }

    /// <summary>Binds from a key lookup; see <see cref="DirectoryOptions.Bind"/>.</summary>
    public static KeysOptions Bind(Func<string, string?> value)
    {
        var options = new KeysOptions();
        options.Directory = value(nameof(Directory))?.Trim() ?? options.Directory;
        string? passphrase = value(nameof(PassphraseFile))?.Trim();
        options.PassphraseFile = string.IsNullOrEmpty(passphrase) ? null : passphrase;
        return options;
    }

    /// <summary>Problems as "[Keys] Key: problem" lines; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Directory))
        {
            problems.Add("[Keys] Directory: required");
        }
        else if (!System.IO.Path.IsPathRooted(Directory))
        {
            problems.Add($"[Keys] Directory: '{Directory}' must be an absolute path");
        }

        if (PassphraseFile is not null && PassphraseFile.Length == 0)
        {
            problems.Add("[Keys] PassphraseFile: empty; remove the key or name a file");
        }

        return problems;
    }
}
