using Microsoft.Extensions.Logging;

namespace MilterSecureList.Daemon.Logging;

/// <summary>Log catalog of the daemon host.</summary>
internal static partial class DaemonLog
{
    [LoggerMessage(1, LogLevel.Information, "securelist-milter {Version} listening on {Endpoint} handler={Handler} max-connections={MaxConnections}")]
    public static partial void Listening(ILogger logger, string version, string endpoint, string handler, int maxConnections);

    [LoggerMessage(2, LogLevel.Information, "stopping: draining open messages for up to {DrainSeconds}s")]
    public static partial void Draining(ILogger logger, double drainSeconds);

    [LoggerMessage(3, LogLevel.Information, "stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(4, LogLevel.Critical, "cannot start: {Problem}")]
    public static partial void StartFailed(ILogger logger, string problem);

    [LoggerMessage(5, LogLevel.Information, "reloaded {ConfigPath} (SIGHUP); listener settings need a restart")]
    public static partial void Reloaded(ILogger logger, string configPath);

    [LoggerMessage(6, LogLevel.Error, "reload refused, running settings kept: {Problem}")]
    public static partial void ReloadFailed(ILogger logger, string problem);
}
