using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Handlers;
using MilterSecureList.Daemon.Logging;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Protocol.Session;
using NLog.Extensions.Logging;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>Builds the generic host: Kestrel with one milter listener, NLog logging, SIGTERM drain.</summary>
public static class DaemonHost
{
    public static string Version => typeof(DaemonHost).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>
    /// Builds the host. <paramref name="handlerFactory"/> replaces the [Milter] Handler choice (for in-process
    /// tests with a custom handler); normally null.
    /// </summary>
    public static IHost Build(DaemonConfiguration configuration, IMilterHandlerFactory? handlerFactory = null)
    {
        ListenerOptions listener = configuration.Get<ListenerOptions>();
        MilterOptions milter = configuration.Get<MilterOptions>();
        LoggingOptions logging = configuration.Get<LoggingOptions>();
        MetricsSection metrics = configuration.Get<MetricsSection>();
        if (listener.Socket.UnixPath is { } path)
        {
            UnixSocketPermissions.RemoveStaleSocket(path);
        }

        // Process-wide, set once before any message: how many member key objects stay imported between messages.
        MilterSecureList.Cms.CmsRecipient.KeyObjectCacheBytes = milter.KeyCacheMemory;

        var sessionOptions = new MilterSessionOptions
        {
            MaxPayload = milter.MaxPacketSize,
            SpoolThreshold = milter.SpoolThreshold,
            SpoolMemory = milter.SpoolMemory,
            MaxMessageSize = milter.MaxMessageSize,
            MaxHeaderBytes = milter.MaxHeaderBytes,
            MaxRecipients = milter.MaxRecipients,
            MaxRecipientBytes = milter.MaxRecipientBytes,
            MaxMacroBytes = milter.MaxMacroBytes,
            FrameTimeout = milter.FrameTimeout,
            IdleTimeout = milter.IdleTimeout,
            TempDirectory = milter.TempDirectory.Length > 0 ? milter.TempDirectory : null,
        };

        bool kestrelMilter = listener.Transport == "kestrel";
        IHostBuilder builder = new HostBuilder()
            .UseContentRoot(AppContext.BaseDirectory)
            .ConfigureLogging(b =>
            {
                b.ClearProviders();
                b.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace);
                b.AddFilter("Microsoft", Microsoft.Extensions.Logging.LogLevel.Warning);
                // A start-up failure (a busy port) is printed by Program as one line in milter.ini's words; the
                // host's own "Hosting failed to start" error would repeat it as a second, HTTP-worded line.
                b.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", Microsoft.Extensions.Logging.LogLevel.Critical);
                b.AddNLog(NLogSetup.Create(logging), new NLogProviderOptions { RemoveLoggerFactoryFilter = false });
            })
            .ConfigureServices(s =>
            {
                s.Configure<HostOptions>(o => o.ShutdownTimeout = listener.DrainTimeout);
                s.AddSingleton(configuration);
                HandlerRegistry.AddHandlers(s, configuration, handlerFactory);
                s.AddSingleton(sessionOptions);
                s.AddSingleton<MilterConnectionMetrics>();
                s.AddSingleton<IMilterSessionObserver, LoggingSessionObserver>();
                s.AddSingleton(sp => new MilterConnectionHandler(sp.GetRequiredService<IMilterHandlerFactory>(), sessionOptions, sp.GetRequiredService<IMilterSessionObserver>()));
                s.AddHostedService(sp => new ReloadOnHangup(
                    handlerFactory is null && HandlerRegistry.UsesLists(milter.Handler) ? sp.GetRequiredService<ListFilterRuntime>() : null,
                    handlerFactory is null && HandlerRegistry.UsesGateway(milter.Handler) ? sp.GetRequiredService<GatewayRuntime>() : null,
                    sp.GetRequiredService<ILogger<ReloadOnHangup>>()));
                s.AddHostedService(sp => new ListenerLifetime(listener, milter, sp.GetRequiredService<IHostApplicationLifetime>(), sp.GetRequiredService<ILogger<ListenerLifetime>>()));
                if (!kestrelMilter)
                {
                    s.AddHostedService(sp => new PipelinesSocketHost(sp.GetRequiredService<MilterConnectionHandler>(), listener, milter, sp.GetRequiredService<IHostApplicationLifetime>()));
                }
            });
        if (!kestrelMilter && metrics.Listen is null)
        {
            return builder.Build(); // no HTTP endpoint and no Kestrel milter listener: no web host at all
        }

        return builder
            .ConfigureWebHost(web =>
            {
                web.UseSockets(o =>
                {
                    o.NoDelay = true; // TCP_NODELAY: replies must not wait for Nagle (libmilter's 40 ms stall)

                    // The reader keeps a frame unconsumed until it is complete, so the input pipe must be able to
                    // hold the largest frame we accept; otherwise the transport would pause forever.
                    o.MaxReadBufferSize = milter.MaxPacketSize + LargeBlockMemoryPool.BlockSize;
                    // Room for the session's REPLBODY flushes: a flush waits only when more than this is unsent.
                    o.MaxWriteBufferSize = 2 * MilterSessionOptions.BodyFlushBytes;

                    // Receive straight into a pool block instead of first waiting with a zero-byte receive: one
                    // recvmsg per 64 KiB read instead of two (half the receive calls of a 1 MB body, see
                    // docs/design.md "Threads and memory in the daemon"). An idle connection holds one block.
                    o.WaitForDataBeforeAllocatingBuffer = false;

                    // Milter frames are handled in microseconds: run them on the socket's I/O thread instead of
                    // hopping to the thread pool for every read.
                    o.UnsafePreferInlineScheduling = true;
                });
                web.UseKestrel(k =>
                {
                    k.AddServerHeader = false;
                    k.Limits.MaxConcurrentConnections = listener.MaxConnections;
                    if (!kestrelMilter)
                    {
                        // The milter socket is PipelinesSocketHost's; Kestrel serves only the metrics endpoint.
                    }
                    else if (listener.Socket.UnixPath is { } unix)
                    {
                        k.ListenUnixSocket(unix, l => l.UseConnectionHandler<MilterKestrelConnectionHandler>());
                    }
                    else
                    {
                        k.Listen(listener.Socket.Inet!, l => l.UseConnectionHandler<MilterKestrelConnectionHandler>());
                    }

                    if (metrics.Listen is { } endpoint)
                    {
                        k.Listen(endpoint, l => l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1);
                    }
                });
                web.Configure(MetricsEndpoint.Map);

                // After UseKestrel/UseSockets, so ours replaces the default 4 KiB-block pool factory.
                web.ConfigureServices(s => s.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>, LargeBlockMemoryPoolFactory>());
            })
            .Build();
    }

    /// <summary>Applies socket permissions once listening, and logs start and drain.</summary>
    private sealed class ListenerLifetime(ListenerOptions listener, MilterOptions milter, IHostApplicationLifetime lifetime, ILogger<ListenerLifetime> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            // Runs before Kestrel binds (hosted services start in registration order): the umask makes the socket
            // file appear with at most SocketMode, so there is no moment with a wider mode. chmod/chown follow.
            uint? previousUmask = listener.Socket.UnixPath is null ? null : UnixSocketPermissions.SetUmask(~(uint)listener.SocketMode & 0x1FF);
            lifetime.ApplicationStarted.Register(() =>
            {
                if (listener.Socket.UnixPath is { } path)
                {
                    UnixSocketPermissions.SetUmask(previousUmask!.Value);
                    UnixSocketPermissions.Apply(path, listener.SocketMode, listener.SocketGroup);
                }

                DaemonLog.Listening(logger, Version, listener.Socket.ToString(), milter.Handler, listener.MaxConnections);
            });
            lifetime.ApplicationStopping.Register(() => DaemonLog.Draining(logger, listener.DrainTimeout.TotalSeconds));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken)
        {
            DaemonLog.Stopped(logger);
            return Task.CompletedTask;
        }
    }
}
