using System.Runtime.InteropServices;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// Process-level safeguards of the daemon beyond those both daemons share (<see cref="MilterSecureList.Configuration.DaemonStart"/>).
/// </summary>
internal static partial class ProcessHardening
{
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

}
