using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MilterSecureList.Configuration;
using MilterSecureList.Daemon.Hosting;
using MilterSecureList.Daemon.Options;

// A Postfix milter daemon: unix sockets, chown and file modes are Linux facilities.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace MilterSecureList.Daemon;

/// <summary>securelist-milter [--config FILE] [--check-config] [--version].</summary>
public static class Program
{
    private const string Usage = "usage: securelist-milter [--config FILE] [--check-config] [--version]";

    public static async Task<int> Main(string[] args)
    {
        // First of all: no core file may ever hold a list key.
        if (DaemonStart.DisableCoreDumps() is int errno and not 0)
        {
            Console.Error.WriteLine($"securelist-milter: cannot disable core dumps (prctl PR_SET_DUMPABLE: errno {errno})");
            return 1;
        }

        SocketEventThreads.PreferInlineCompletions();
        string configPath = DaemonConfiguration.DefaultPath;
        DaemonAction action = DaemonStart.ParseArguments(args, ref configPath);
        if (DaemonStart.Answer(action, Usage, "securelist-milter " + DaemonHost.Version) is int code)
        {
            return code;
        }

        bool checkOnly = action == DaemonAction.CheckConfig;
        DaemonConfiguration configuration;
        Microsoft.Extensions.Hosting.IHost host;
        try
        {
            configuration = DaemonConfiguration.Load(configPath);
            if (checkOnly)
            {
                Console.WriteLine($"{configPath}: OK");
                return 0;
            }

            host = DaemonHost.Build(configuration);
            ReloadOnHangup.ConfigPath = configPath;

            // Open the directory and keys now, so a bad path or an unsafe key directory stops start-up with
            // one line instead of failing the first message.
            _ = host.Services.GetRequiredService<MilterSecureList.Protocol.Session.IMilterHandlerFactory>();
        }
        catch (ConfigurationException ex)
        {
            // One line naming section, key and problem; no stack trace.
            Console.Error.WriteLine(ex.Message);
            return 1;
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine("securelist-milter: cannot start: " + ex.Message);
            return 1;
        }
        catch (MilterSecureList.Directory.DirectoryException ex)
        {
            Console.Error.WriteLine("securelist-milter: cannot start: " + ex.Message);
            return 1;
        }

        try
        {
            await host.RunAsync().ConfigureAwait(false);
            return 0;
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine("securelist-milter: cannot start: " + ListenFailure.Describe(ex, configuration));
            return 1;
        }
        finally
        {
            host.Dispose();
            NLog.LogManager.Shutdown();
        }
    }
}
