using System.Runtime.InteropServices;

namespace MilterSecureList.Configuration;

/// <summary>What a daemon's command line asks for: <c>[--config FILE] [--check-config] [--version] [-h|--help]</c>.</summary>
public enum DaemonAction
{
    Run,
    CheckConfig,
    Version,
    Help,
    Usage,
}

/// <summary>
/// The first steps both daemons (securelist-milter, securelist-keyd) take, before they read a key: no core dumps,
/// and the command line they share. Exit codes stay each program's own (docs/design.md, "Composition root").
/// </summary>
public static partial class DaemonStart
{
    /// <summary>Parses the shared command line. <paramref name="configPath"/> keeps its default unless --config is given.</summary>
    public static DaemonAction ParseArguments(IReadOnlyList<string> args, ref string configPath)
    {
        DaemonAction action = DaemonAction.Run;
        for (int i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--version":
                    return DaemonAction.Version;
                case "-h" or "--help":
                    return DaemonAction.Help;
                case "--check-config":
                    action = DaemonAction.CheckConfig;
                    break;
                case "--config" when i + 1 < args.Count:
                    configPath = args[++i];
                    break;
                default:
                    return DaemonAction.Usage;
            }
        }

        return action;
    }

    /// <summary>Answers what needs no configuration (--version, --help, a bad command line) and returns the exit code:
    /// 0, or 2 for a bad command line (usage on stderr). Null: go on (run or check the configuration).</summary>
    public static int? Answer(DaemonAction action, string usage, string versionLine)
    {
        switch (action)
        {
            case DaemonAction.Version:
                Console.WriteLine(versionLine);
                return 0;
            case DaemonAction.Help:
                Console.WriteLine(usage);
                return 0;
            case DaemonAction.Usage:
                Console.Error.WriteLine(usage);
                return 2;
            default:
                return null;
        }
    }

    private const int PrSetDumpable = 4; // <linux/prctl.h>

    /// <summary>
    /// Keeps private keys out of core dumps: both daemons hold keys (and OpenSSL's copies of p, q, d) for their whole
    /// life. PR_SET_DUMPABLE 0 stops the kernel writing a core file, gives the files under /proc/PID to root and
    /// refuses ptrace to processes of the same user. The systemd units also set LimitCORE=0.
    /// Returns the errno on failure (0 on success).
    /// </summary>
    public static int DisableCoreDumps() =>
        Prctl(PrSetDumpable, 0, 0, 0, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
