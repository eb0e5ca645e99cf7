using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace MilterSecureList.Daemon.Options;

/// <summary>Unix socket file housekeeping: group lookup, chown/chmod, and removal of a stale socket.</summary>
internal static partial class UnixSocketPermissions
{
    public static bool GroupExists(string name) => TryGetGroupId(name, out _);

    /// <summary>Looks a group up in /etc/group (getgrnam without P/Invoke structure layouts).</summary>
    public static bool TryGetGroupId(string name, out uint gid)
    {
        gid = 0;
        if (!File.Exists("/etc/group"))
        {
            return false;
        }

        foreach (string line in File.ReadLines("/etc/group"))
        {
            string[] f = line.Split(':');
            if (f.Length >= 3 && f[0] == name && uint.TryParse(f[2], System.Globalization.CultureInfo.InvariantCulture, out gid))
            {
                return true;
            }
        }

        return false;
    }

    public static void Apply(string path, UnixFileMode mode, string group)
    {
        if (group.Length > 0)
        {
            if (!TryGetGroupId(group, out uint gid))
            {
                throw new IOException($"group '{group}' does not exist");
            }

            if (Chown(path, uint.MaxValue, gid) != 0)
            {
                throw new IOException($"cannot set group of {path} to {group}: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        File.SetUnixFileMode(path, mode);
    }

    /// <summary>
    /// Removes a socket file left by a previous run. If something still accepts connections on it, another
    /// daemon owns it and we refuse to steal it.
    /// </summary>
    public static void RemoveStaleSocket(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        if ((File.GetAttributes(path) & FileAttributes.Directory) != 0)
        {
            throw new IOException($"{path} is a directory");
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new IOException($"{path} is in use by another process");
            }
            catch (SocketException)
            {
                // Nobody listens: stale.
            }
        }

        File.Delete(path);
    }

    /// <summary>Sets the process umask (umask(2)) and returns the previous one.</summary>
    public static uint SetUmask(uint mask) => Umask(mask);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    // chown(2); uid -1 keeps the owner.
    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chown(string path, uint owner, uint group);
}
