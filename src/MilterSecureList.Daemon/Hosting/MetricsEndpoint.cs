using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using MilterSecureList.Filter;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>GET /metrics in Prometheus text format 0.0.4 on the [Metrics] Listen address (loopback only).
/// Only HTTP listeners reach this pipeline; the milter listener has its own connection handler.</summary>
internal static class MetricsEndpoint
{
    public static void Map(IApplicationBuilder app)
    {
        FilterMetrics metrics = app.ApplicationServices.GetRequiredService<FilterMetrics>();
        MilterConnectionMetrics connections = app.ApplicationServices.GetRequiredService<MilterConnectionMetrics>();
        app.Run(async context =>
        {
            if (context.Request.Path != "/metrics" || !HttpMethods.IsGet(context.Request.Method))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            var text = new System.Text.StringBuilder(metrics.ToPrometheusText());
            connections.AppendPrometheusText(text);
            await context.Response.WriteAsync(text.ToString(), context.RequestAborted).ConfigureAwait(false);
        });
    }
}
