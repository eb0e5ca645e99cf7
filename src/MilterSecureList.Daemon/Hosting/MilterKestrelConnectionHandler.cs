using System.Runtime.InteropServices;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MilterSecureList.Daemon.Logging;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// Kestrel adapter: refuses inet peers outside [Listener] AllowFrom, then hands each accepted connection's pipe
/// to the transport-agnostic protocol handler.
/// </summary>
internal sealed class MilterKestrelConnectionHandler(
    MilterConnectionHandler handler,
    IHostApplicationLifetime lifetime,
    DaemonConfiguration configuration,
    MilterConnectionMetrics metrics,
    ILogger<MilterKestrelConnectionHandler> logger) : ConnectionHandler
{
    private readonly PeerAllowList _allowFrom = configuration.Get<ListenerOptions>().AllowFrom;

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        if (connection.RemoteEndPoint is IPEndPoint remote && !_allowFrom.Allows(remote.Address))
        {
            // Returning closes the connection before a byte is read.
            metrics.Refused();
            MilterLog.ConnectionRefused(logger, connection.ConnectionId, remote.ToString());
            return;
        }

        EnlargeUnixSendBuffer(connection);

        // Drain when Kestrel asks the connection to close (graceful shutdown) or the host stops.
        CancellationToken closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var drain = CancellationTokenSource.CreateLinkedTokenSource(closeRequested, lifetime.ApplicationStopping);
        var info = new MilterConnectionInfo(connection.ConnectionId, connection.RemoteEndPoint, connection.LocalEndPoint, UnixPeer(connection));
        await handler.RunAsync(connection.Transport, info, drain.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// A unix socket's send buffer is 208 KiB by default (net.core.wmem_default), so a REPLBODY flush of
    /// <see cref="MilterSessionOptions.BodyFlushBytes"/> took several sendmsg calls and epoll wake-ups. With room
    /// for a whole flush, each flush is one call. Kernel memory, used only while the MTA has not read yet; capped
    /// by net.core.wmem_max. TCP sockets keep the kernel's auto-tuning (a fixed size would switch it off).
    /// </summary>
    private static void EnlargeUnixSendBuffer(ConnectionContext connection)
    {
        if (connection.Features.Get<IConnectionSocketFeature>()?.Socket is not { AddressFamily: AddressFamily.Unix } socket)
        {
            return;
        }

        try
        {
            if (socket.SendBufferSize < MilterSessionOptions.BodyFlushBytes)
            {
                socket.SendBufferSize = MilterSessionOptions.BodyFlushBytes; // Linux doubles it for its bookkeeping
            }
        }
        catch (SocketException)
        {
            // Only speed is lost.
        }
    }

    /// <summary>
    /// A unix socket peer has no address; its process and user (SO_PEERCRED) name it in log lines, so a local
    /// process that holds connections can be found.
    /// </summary>
    private static string? UnixPeer(ConnectionContext connection)
    {
        if (connection.Features.Get<IConnectionSocketFeature>()?.Socket is not { AddressFamily: AddressFamily.Unix } socket)
        {
            return null;
        }

        const int SolSocket = 1, SoPeerCred = 17; // <sys/socket.h>, Linux
        Span<byte> ucred = stackalloc byte[12];    // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) != ucred.Length)
            {
                return "unix";
            }
        }
        catch (SocketException)
        {
            return "unix";
        }

        int pid = MemoryMarshal.Read<int>(ucred); // native byte order
        uint uid = MemoryMarshal.Read<uint>(ucred[4..]);
        return $"unix:pid={pid},uid={uid}";
    }
}
