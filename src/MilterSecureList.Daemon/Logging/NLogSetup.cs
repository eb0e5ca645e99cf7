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

    /// <summary>How long a log line may wait for the next batch to be written.</summary>
    internal const int BatchMilliseconds = 50;

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

        // Standard error (journald collects it under systemd) and the optional file, behind one asynchronous queue so
        // logging never blocks a milter reply. The queue is drained in batches every BatchMilliseconds, not per line:
        // each drain wakes a timer and a pool thread, and per line that was several wake-ups per message, a measurable
        // share of the daemon's CPU (docs/design.md, "The list filter's cost through Postfix"). A batch goes to
        // standard error as one write.
        var console = new ConsoleTarget("stderr") { StdErr = true, Layout = Layout, AutoFlush = true };
        Target sink = console;
        if (options.File.Length > 0)
        {
            var file = new FileTarget("file") { FileName = options.File, Layout = Layout, KeepFileOpen = true };
            sink = new SplitGroupTarget("stderr-and-file", console, file);
        }

        config.AddRule(min, NLog.LogLevel.Fatal, new AsyncTargetWrapper("async", sink)
        {
            OverflowAction = AsyncTargetWrapperOverflowAction.Block,
            TimeToSleepBetweenBatches = BatchMilliseconds,
        });
        return config;
    }
}
