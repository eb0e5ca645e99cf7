using System.Runtime.InteropServices;

namespace MilterSecureList.Directory;

/// <summary>
/// The few Unix file facts .NET does not expose: owner, file type, the effective user, chown. The key
/// directory's owner is the service user (the package makes /var/lib/securelist/keys securelist:securelist
/// 0700), so files the CLI writes there as root are handed to that owner; see docs/design.md (key files).
/// </summary>
public static partial class UnixFile
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1, StatxMode = 0x2, StatxUid = 0x8, StatxGid = 0x10;
    private const int FileTypeMask = 0xF000, RegularFile = 0x8000;

    /// <summary>Owner, group and full st_mode of PATH (following symlinks), or false if it cannot be stat'ed.</summary>
    public static bool TryStat(string path, out uint uid, out uint gid, out int mode)
    {
        // struct statx (linux/stat.h) has a fixed layout on every architecture: stx_uid at offset 20,
        // stx_gid at 24, stx_mode (u16) at 28; the struct is 256 bytes.
        Span<byte> buffer = stackalloc byte[256];
        uid = gid = 0;
        mode = 0;
        if (Statx(AtFdCwd, path, 0, StatxType | StatxMode | StatxUid | StatxGid, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return false;
        }

        uid = MemoryMarshal.Read<uint>(buffer[20..]);
        gid = MemoryMarshal.Read<uint>(buffer[24..]);
        mode = MemoryMarshal.Read<ushort>(buffer[28..]);
        return true;
    }

    /// <summary>True for a regular file; false for directories, devices, FIFOs, sockets and missing paths.</summary>
    public static bool IsRegularFile(string path) => TryStat(path, out _, out _, out int mode) && (mode & FileTypeMask) == RegularFile;

    public static uint EffectiveUserId => Geteuid();

    public static bool IsRoot => Geteuid() == 0;

    /// <summary>chown(2); throws with the errno on failure.</summary>
    public static void ChangeOwner(string path, uint uid, uint gid)
    {
        if (Chown(path, uid, gid) != 0)
        {
            throw new IOException($"cannot change the owner of {path}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>The user name of UID from /etc/passwd (getpwuid without struct layouts), or the number.</summary>
    public static string UserName(uint uid)
    {
        string id = uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            foreach (string line in File.ReadLines("/etc/passwd"))
            {
                string[] f = line.Split(':');
                if (f.Length >= 3 && f[2] == id)
                {
                    return f[0];
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return id;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint Geteuid();

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chown(string path, uint owner, uint group);
}
