using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using MilterSecureList.KeyRelease;
using NLog.Extensions.Logging;

namespace MilterSecureList.KeyServer;

/// <summary>
/// securelist-keyd's HTTPS host: Kestrel with TLS on [KeyServer] Listen (client certificates asked for, required only by
/// the deposit endpoint), the JSON API of docs/key-release.md §4, /openapi.json, and /metrics on [Metrics] Listen.
/// </summary>
public sealed class KeyServerHost : IAsyncDisposable
{
    private const string Refused = "release refused";
    private static readonly PathString ReleasePath = new("/v1/release");
    private static readonly byte[] RefusedBody = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse { Error = Refused }, KeyReleaseJson.Default.ErrorResponse);
    private static readonly byte[] MalformedBody = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse { Error = "malformed request" }, KeyReleaseJson.Default.ErrorResponse);
    private static readonly byte[] UnavailableBody = JsonSerializer.SerializeToUtf8Bytes(new ErrorResponse { Error = "temporarily unavailable, try again later" }, KeyReleaseJson.Default.ErrorResponse);
    private const int MaxBodyBytes = 256 * 1024;

    private readonly WebApplication _app;
    private readonly ReceiptMailer _receipts;
    private readonly IDisposable[] _owned;

    private KeyServerHost(WebApplication app, ReceiptMailer receipts, params IDisposable[] owned)
    {
        _app = app;
        _receipts = receipts;
        _owned = owned;
    }

    public KeyReleaseService Service => _app.Services.GetRequiredService<KeyReleaseService>();

    /// <summary>The TLS port actually bound (the configured one, or the kernel's choice for port 0 in tests).</summary>
    public int Port => new Uri(_app.Urls.First(u => u.StartsWith("https", StringComparison.Ordinal))).Port;

    public static KeyServerHost Build(KeyServerConfiguration config, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        X509Certificate2 tls = KeyServerConfiguration.LoadPair(config.TlsCertificate, config.TlsKey);
        ListKey releaseKey = KeyServerConfiguration.LoadReleaseKey(config.ReleaseCertificate, config.ReleaseKey);
        SqlDirectoryStore directoryStore = SqlDirectoryStore.Open(config.Directory, time);
        ReleaseStore store = ReleaseStore.Open(config.Directory, time);
        // The key store is never asked for list keys here; it only satisfies the directory's constructor.
        var keys = new ListKeyStore(new KeysOptions { Directory = Path.GetDirectoryName(Path.GetFullPath(config.ReleaseKey))! });
        var directory = new CachingListDirectory(new ListDirectory(directoryStore, keys, time), config.Directory, time);

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // NLog's rules decide the level ([KeyServer] LogLevel). ASP.NET Core's own loggers are also filtered here, before
        // NLog: a logger NLog only drops still builds each per-request line, and the host starts a per-request Activity
        // for it (3 % of the key server's CPU, docs/key-release.md, Performance).
        builder.Logging.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace);
        builder.Logging.AddFilter("Microsoft", Microsoft.Extensions.Logging.LogLevel.Warning);
        builder.Logging.AddNLog(KeyServerLogging.Create(config.LogLevel), new NLogProviderOptions { RemoveLoggerFactoryFilter = false });
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = MaxBodyBytes;
            kestrel.Listen(config.Listen, listen => listen.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = tls,
                // Asked of every client, checked only by /v1/deposit against [KeyServer] DepositClients.
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (_, _, _) => true,
            }));
            if (config.MetricsListen is { } metrics)
            {
                kestrel.Listen(metrics);
            }
        });
        builder.Services.AddSingleton(time);
        X509Certificate2 receiptSigner = KeyServerConfiguration.LoadPair(config.ReleaseCertificate, config.ReleaseKey);
        builder.Services.AddSingleton(sp => new ReceiptMailer(config.Notices, receiptSigner,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("securelist-keyd")));
        builder.Services.AddSingleton(sp => new KeyReleaseService(store, directory, releaseKey, config.Service, time,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("securelist-keyd"), sp.GetRequiredService<ReceiptMailer>()));
        builder.Services.AddHostedService(sp => new SweepService(new ReleaseSweeper(store, config.SweepInterval, time,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("securelist-keyd"))));

        WebApplication app = builder.Build();
        Map(app, config);
        return new KeyServerHost(app, app.Services.GetRequiredService<ReceiptMailer>(), directory, store, directoryStore, releaseKey, tls, receiptSigner);
    }

    private static void Map(WebApplication app, KeyServerConfiguration config)
    {
        int? metricsPort = config.MetricsListen?.Port;
        KeyReleaseService releases = app.Services.GetRequiredService<KeyReleaseService>();
        ILogger unavailableLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("securelist-keyd");
        app.Use(async (context, next) =>
        {
            // The API answers only over TLS; the plain metrics listener serves /metrics and nothing else.
            if (!context.Request.IsHttps && !(context.Request.Path == "/metrics" && context.Connection.LocalPort == metricsPort))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            // The release is the hot path: answered here, without routing and endpoint binding (docs/key-release.md,
            // Performance).
            try
            {
                if (context.Request.Path == ReleasePath && HttpMethods.IsPost(context.Request.Method))
                {
                    await ReleaseAsync(context, releases).ConfigureAwait(false);
                    return;
                }

                await next(context).ConfigureAwait(false);
            }
            catch (DirectoryException e) when (e.Reason == DirectoryError.Unavailable && !context.Response.HasStarted)
            {
                // The database is out of reach (restart, failover): a temporary condition the reader and the milter retry,
                // not a refusal and not an internal error. The store reopens its sessions on the next request.
                unavailableLog.LogWarning("database unavailable, answered 503: {Reason}", e.Message);
                context.Response.Headers.RetryAfter = "30";
                await WriteJsonAsync(context, StatusCodes.Status503ServiceUnavailable, UnavailableBody).ConfigureAwait(false);
            }
        });

        app.MapGet("/metrics", (HttpContext context, KeyReleaseService service) =>
            context.Request.IsHttps ? Results.NotFound() : Results.Text(service.Counters.ToPrometheusText(), "text/plain; version=0.0.4; charset=utf-8"));

        app.MapGet("/openapi.json", () =>
        {
            Stream s = typeof(KeyServerHost).Assembly.GetManifestResourceStream("openapi.json")!;
            return Results.Stream(s, "application/json");
        });

        app.MapPost("/v1/deposit", async (HttpContext context, KeyReleaseService service) =>
        {
            X509Certificate2? client = context.Connection.ClientCertificate;
            if (client is null || !config.DepositClients.Contains(client.GetCertHashString(HashAlgorithmName.SHA256)))
            {
                return Error(StatusCodes.Status403Forbidden, "deposit not allowed");
            }

            DepositRequest? request = await ReadJson(context, KeyReleaseJson.Default.DepositRequest).ConfigureAwait(false);
            if (request is null)
            {
                return Error(StatusCodes.Status400BadRequest, "malformed request");
            }

            return service.Deposit(request) switch
            {
                DepositStatus.Stored => Results.StatusCode(StatusCodes.Status201Created),
                DepositStatus.AlreadyStored => Results.StatusCode(StatusCodes.Status200OK),
                DepositStatus.Conflict => Error(StatusCodes.Status409Conflict, "message id taken"),
                DepositStatus.Forbidden => Error(StatusCodes.Status403Forbidden, "deposit not allowed"),
                _ => Error(StatusCodes.Status400BadRequest, "malformed request"),
            };
        });

    }

    /// <summary>POST /v1/release: every refusal is answered alike (403, "release refused").</summary>
    private static async Task ReleaseAsync(HttpContext context, KeyReleaseService service)
    {
        ReleaseHttpRequest? request = await ReadJson(context, KeyReleaseJson.Default.ReleaseHttpRequest).ConfigureAwait(false);
        if (request is null)
        {
            await WriteJsonAsync(context, StatusCodes.Status400BadRequest, MalformedBody).ConfigureAwait(false);
            return;
        }

        string client = context.Connection.RemoteIpAddress?.ToString() ?? "-";
        ReleaseOutcome outcome = await service.ReleaseAsync(request.Request, client).ConfigureAwait(false);
        byte[] body = outcome.Released
            ? JsonSerializer.SerializeToUtf8Bytes(new ReleaseHttpResponse { RecipientInfo = outcome.RecipientInfo!, FirstRelease = outcome.FirstRelease },
                KeyReleaseJson.Default.ReleaseHttpResponse)
            : RefusedBody;
        await WriteJsonAsync(context, outcome.Released ? StatusCodes.Status200OK : StatusCodes.Status403Forbidden, body).ConfigureAwait(false);
    }

    /// <summary>The whole answer in one write with its length (no chunked encoding).</summary>
    private static Task WriteJsonAsync(HttpContext context, int status, byte[] body)
    {
        HttpResponse response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body, 0, body.Length, context.RequestAborted);
    }

    private static async Task<T?> ReadJson<T>(HttpContext context, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
        where T : class
    {
        try
        {
            return await context.Request.ReadFromJsonAsync(type, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException or FormatException)
        {
            return null;
        }
    }

    private static IResult Error(int status, string text) =>
        Results.Json(new ErrorResponse { Error = text }, KeyReleaseJson.Default.ErrorResponse, statusCode: status);

    public Task StartAsync(CancellationToken cancellationToken = default) => _app.StartAsync(cancellationToken);

    public Task RunAsync() => _app.RunAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        // Receipts already queued are sent before the signing key goes.
        await _receipts.DisposeAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        foreach (IDisposable d in _owned)
        {
            d.Dispose();
        }
    }
}

/// <summary>Runs the release-delete sweep (<see cref="ReleaseSweeper"/>) for as long as the host runs.</summary>
internal sealed class SweepService(ReleaseSweeper sweeper) : Microsoft.Extensions.Hosting.BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => sweeper.RunAsync(stoppingToken);
}
