namespace MilterSecureList.Testing;

/// <summary>
/// The newer S/MIME readers that scripts/install-newer-readers.sh unpacks from Debian 13 into a cache directory:
/// NSS 3.110 (cmsutil, certutil, pk12util) and gpgsm/gpg-agent/gpgconf 2.4, each run through a wrapper in the
/// cache's bin/. Debian 12's own NSS 3.87 and gpgsm 2.2.40 cannot read a KeyAgreeRecipientInfo at all; these can.
/// The places searched are the script's: $SECURELIST_READERS_DIR, /var/cache/securelist-tests/trixie-readers,
/// ${XDG_CACHE_HOME:-~/.cache}/securelist-tests/trixie-readers. Absent readers fail the test with the script to run
/// (test.sh runs it), never a skip.
/// </summary>
public static class NewerReaders
{
    public const string InstallScript = "scripts/install-newer-readers.sh";

    private static readonly Lazy<string?> s_directory = new(Locate);

    /// <summary>The cache directory, or throws naming the script that fills it.</summary>
    public static string Directory => s_directory.Value ?? throw new InvalidOperationException(
        $"the newer S/MIME readers (NSS 3.110, gpgsm 2.4 from Debian 13) are not installed: run {InstallScript} (test.sh runs it); looked in {string.Join(", ", Candidates())}");

    /// <summary>Full path of one wrapper (cmsutil, certutil, pk12util, gpgsm, gpg-agent, gpgconf).</summary>
    public static string Tool(string name)
    {
        return CachedFile(Path.Combine("bin", name));
    }

    /// <summary>A file the script keeps in the cache (InRelease, Packages.xz, VERSIONS).</summary>
    public static string CachedFile(string name)
    {
        string path = Path.Combine(Directory, name);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: remove {Directory} and run {InstallScript} again");
    }

    /// <summary>The Debian version the script recorded for <paramref name="package"/> (e.g. "2:3.110-1+deb13u5" for libnss3).</summary>
    public static string PackageVersion(string package) =>
        File.ReadLines(CachedFile("VERSIONS"))
            .Select(l => l.Split(' '))
            .Where(f => f.Length >= 2 && f[0] == package)
            .Select(f => f[1])
            .FirstOrDefault() ?? throw new InvalidOperationException($"{Directory}/VERSIONS names no {package}");

    private static IEnumerable<string> Candidates()
    {
        string? explicitDir = Environment.GetEnvironmentVariable("SECURELIST_READERS_DIR");
        if (!string.IsNullOrEmpty(explicitDir))
        {
            yield return explicitDir;
            yield break;
        }

        yield return "/var/cache/securelist-tests/trixie-readers";
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string cache = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg;
        yield return Path.Combine(cache, "securelist-tests", "trixie-readers");
    }

    // The script writes .complete last, after every wrapper ran once: a half-filled cache is not used.
    private static string? Locate() => Candidates().FirstOrDefault(d => File.Exists(Path.Combine(d, ".complete")));
}
