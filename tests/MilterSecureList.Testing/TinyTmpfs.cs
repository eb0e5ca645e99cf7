namespace MilterSecureList.Testing;

/// <summary>
/// A tmpfs of a few hundred KiB mounted on a temp directory: a real disk that fills up (ENOSPC), for the
/// disk-full tests. Needs root (mount); unmounted and removed on dispose.
/// </summary>
public sealed class TinyTmpfs : IDisposable
{
    private TinyTmpfs(string path)
    {
        Path = path;
    }

    public string Path { get; }

    /// <summary>Mounts a tmpfs of <paramref name="size"/> (mount's syntax, e.g. "256k"), mode 0777 so a daemon under another user can write.</summary>
    public static TinyTmpfs Mount(string size)
    {
        ExternalTool.RequireRoot("a tmpfs for the disk-full test (mount -t tmpfs)");
        string dir = Directory.CreateTempSubdirectory("msl-tmpfs-").FullName;
        Run("mount", "-t", "tmpfs", "-o", $"size={size},mode=0777", "tmpfs", dir);
        return new TinyTmpfs(dir);
    }

    public void Dispose()
    {
        Run("umount", Path);
        Directory.Delete(Path);
    }

    private static void Run(string file, params string[] args) => ExternalTool.Run(file, args, new ToolOptions { Timeout = TimeSpan.FromSeconds(30) }).EnsureSuccess();
}
