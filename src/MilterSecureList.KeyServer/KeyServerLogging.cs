using NLog.Config;
using NLog.Targets;
using NLog.Targets.Wrappers;

namespace MilterSecureList.KeyServer;

/// <summary>NLog behind Microsoft.Extensions.Logging, to standard error (journald under systemd), asynchronously so a
/// log line never holds up a reply.</summary>
internal static class KeyServerLogging
{
    public static LoggingConfiguration Create(string level)
    {
        var config = new LoggingConfiguration();
        var console = new ConsoleTarget("stderr")
        {
            StdErr = true,
            AutoFlush = true,
            Layout = "${longdate} ${level:uppercase=true} securelist-keyd: ${message}${onexception: ${exception:format=ShortType,Message}}",
        };
        // Kestrel's and ASP.NET Core's own per-request lines only at warnings and above: this rule comes first and is final.
        config.AddRule(NLog.LogLevel.Trace, NLog.LogLevel.Info, new NullTarget("quiet"), "Microsoft.*", final: true);
        config.AddRule(NLog.LogLevel.FromString(level == "warn" ? "Warn" : level), NLog.LogLevel.Fatal,
            new AsyncTargetWrapper("stderr-async", console) { OverflowAction = AsyncTargetWrapperOverflowAction.Block });
        return config;
    }
}
