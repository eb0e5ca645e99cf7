using System.Runtime.InteropServices;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// Keeps list private keys out of core dumps: the daemon holds them (and OpenSSL's copies of p, q, d) in memory
/// for its whole life. PR_SET_DUMPABLE 0 stops the kernel writing a core file, gives the files under /proc/PID to
/// root and refuses ptrace to processes of the same user. The systemd unit also sets LimitCORE=0.
/// </summary>
internal static partial class ProcessHardening
{
    private const int PrGetDumpable = 3; // <linux/prctl.h>
    private const int PrSetDumpable = 4;

    /// <summary>Marks the process non-dumpable; returns the errno on failure (0 on success).</summary>
    public static int DisableCoreDumps() =>
        Prctl(PrSetDumpable, 0, 0, 0, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Whether the kernel would dump this process (PR_GET_DUMPABLE).</summary>
    public static bool IsDumpable => Prctl(PrGetDumpable, 0, 0, 0, 0) != 0;

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
