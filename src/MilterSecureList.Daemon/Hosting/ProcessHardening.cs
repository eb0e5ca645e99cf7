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

    private const int SigHup = 1;

    /// <summary>
    /// SIGHUP means "reload" to this daemon. A disposition of "ignore" survives exec, so a daemon started under
    /// nohup(1) or by a parent that ignores hang-ups would never see a reload, and .NET does not install a handler
    /// over an inherited "ignore". Put the default back first; the reload handler replaces it right after.
    /// Returns true when SIGHUP had been ignored.
    /// </summary>
    public static bool TakeBackIgnoredHangup()
    {
        // struct sigaction starts with the handler; the buffer is larger than any libc's struct.
        Span<byte> old = stackalloc byte[256];
        if (SigAction(SigHup, IntPtr.Zero, ref MemoryMarshal.GetReference(old)) != 0
            || MemoryMarshal.Read<IntPtr>(old) != SigIgn)
        {
            return false;
        }

        return Signal(SigHup, SigDfl) != SigErr;
    }

    private static readonly IntPtr SigDfl = IntPtr.Zero;
    private static readonly IntPtr SigIgn = 1;
    private static readonly IntPtr SigErr = -1;

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static partial int SigAction(int signal, IntPtr action, ref byte oldAction);

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial IntPtr Signal(int signal, IntPtr handler);

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
