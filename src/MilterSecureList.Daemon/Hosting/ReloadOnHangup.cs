using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Handlers;
using MilterSecureList.Daemon.Logging;
using MilterSecureList.Daemon.Options;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// SIGHUP (systemd's ExecReload): re-reads milter.ini and the directory without dropping connections, for each
/// runtime the configured handler uses (lists, gateway, or both for "gateway, lists").
/// Listener settings need a restart; a file that no longer validates is logged and the running settings stay.
/// </summary>
internal sealed class ReloadOnHangup(ListFilterRuntime? runtime, GatewayRuntime? gateway, ILogger<ReloadOnHangup> logger) : IHostedService
{
    private PosixSignalRegistration? _registration;

    /// <summary>Set by Program: the file the daemon was started with.</summary>
    public static string ConfigPath { get; set; } = DaemonConfiguration.DefaultPath;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        ProcessHardening.TakeBackIgnoredHangup();
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true; // the default action would end the process
            Reload();
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _registration?.Dispose();
        return Task.CompletedTask;
    }

    private void Reload()
    {
        try
        {
            DaemonConfiguration configuration = DaemonConfiguration.Load(ConfigPath);
            // Both validate before either changes: Load above has checked the whole file.
            gateway?.Reload(configuration);
            runtime?.Reload(configuration);
            DaemonLog.Reloaded(logger, ConfigPath);
        }
        catch (ConfigurationException e)
        {
            DaemonLog.ReloadFailed(logger, e.Message);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or MilterSecureList.Directory.DirectoryException)
        {
            DaemonLog.ReloadFailed(logger, e.Message);
        }
    }
}
