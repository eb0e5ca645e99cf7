using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Hosting;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>Kestrel adapter: hands each accepted connection's pipe to the transport-agnostic protocol handler.</summary>
internal sealed class MilterKestrelConnectionHandler(MilterConnectionHandler handler, IHostApplicationLifetime lifetime) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        // Drain when Kestrel asks the connection to close (graceful shutdown) or the host stops.
        CancellationToken closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var drain = CancellationTokenSource.CreateLinkedTokenSource(closeRequested, lifetime.ApplicationStopping);
        var info = new MilterConnectionInfo(connection.ConnectionId, connection.RemoteEndPoint, connection.LocalEndPoint);
        await handler.RunAsync(connection.Transport, info, drain.Token).ConfigureAwait(false);
    }
}
