using MilterSecureList.Daemon.Options;
using NLog;
using NLog.Config;
using NLog.Targets;
using NLog.Targets.Wrappers;

namespace MilterSecureList.Daemon.Logging;

/// <summary>NLog as the sink behind Microsoft.Extensions.Logging, configured in code (no NLog.config file).</summary>
internal static class NLogSetup
{
    private const string Layout = "${longdate} ${level:uppercase=true} ${logger:shortName=true}: ${message}${onexception: ${exception:format=ShortType,Message}}";

    public static LoggingConfiguration Create(LoggingOptions options)
    {
        var config = new LoggingConfiguration();
        NLog.LogLevel min = options.Level switch
        {
            "trace" => NLog.LogLevel.Trace,
            "debug" => NLog.LogLevel.Debug,
            "warn" => NLog.LogLevel.Warn,
            "error" => NLog.LogLevel.Error,
            _ => NLog.LogLevel.Info,
        };

        // Standard error: journald collects it under systemd. Async so logging never blocks a milter reply.
        var console = new ConsoleTarget("stderr") { StdErr = true, Layout = Layout, AutoFlush = true };
        config.AddRule(min, NLog.LogLevel.Fatal, new AsyncTargetWrapper("stderr-async", console) { OverflowAction = AsyncTargetWrapperOverflowAction.Block });
        if (options.File.Length > 0)
        {
            var file = new FileTarget("file") { FileName = options.File, Layout = Layout, KeepFileOpen = true };
            config.AddRule(min, NLog.LogLevel.Fatal, new AsyncTargetWrapper("file-async", file) { OverflowAction = AsyncTargetWrapperOverflowAction.Block });
        }

        return config;
    }
}
