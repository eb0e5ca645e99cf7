using MilterSecureList.Configuration;
using MilterSecureList.Directory;

namespace MilterSecureList.KeyServer;

/// <summary>securelist-keyd [--config FILE] [--check-config] [--version]. Exit 0 stopped (or configuration valid),
/// 1 configuration invalid or start-up failed (one line), 2 bad command line.</summary>
public static class Program
{
    private const string Usage = "usage: securelist-keyd [--config FILE] [--check-config] [--version]";

    public static async Task<int> Main(string[] args)
    {
        // First of all, as the milter does: no core file may ever hold the release key or a deposit.
        if (DaemonStart.DisableCoreDumps() is int errno and not 0)
        {
            Console.Error.WriteLine($"securelist-keyd: cannot disable core dumps (prctl PR_SET_DUMPABLE: errno {errno})");
            return 1;
        }

        string path = KeyServerConfiguration.DefaultPath;
        DaemonAction action = DaemonStart.ParseArguments(args, ref path);
        if (DaemonStart.Answer(action, Usage, "securelist-keyd " + typeof(Program).Assembly.GetName().Version?.ToString(3)) is int code)
        {
            return code;
        }

        bool checkOnly = action == DaemonAction.CheckConfig;

        // A release's checks are synchronous work (database reads, RSA) on a pool thread, and only its commit is awaited
        // (the store's writer thread): have threads for a burst of readers at once instead of waiting for the pool to
        // grow by one thread per half second.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), io);

        KeyServerHost host;
        try
        {
            KeyServerConfiguration config = KeyServerConfiguration.Load(path);
            if (checkOnly)
            {
                Console.WriteLine($"{path}: OK");
                return 0;
            }

            host = KeyServerHost.Build(config);
        }
        catch (Exception e) when (e is ConfigurationException or IOException or DirectoryException or System.Security.Cryptography.CryptographicException)
        {
            Console.Error.WriteLine(e is ConfigurationException ? e.Message : "securelist-keyd: cannot start: " + e.Message.ReplaceLineEndings(" "));
            return 1;
        }

        try
        {
            await host.RunAsync().ConfigureAwait(false);
            return 0;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine("securelist-keyd: cannot start: " + e.Message.ReplaceLineEndings(" "));
            return 1;
        }
        finally
        {
            await host.DisposeAsync().ConfigureAwait(false);
            NLog.LogManager.Shutdown();
        }
    }
}
