using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Protocol.Session;
using Pipelines.Sockets.Unofficial;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// The milter socket served by Pipelines.Sockets.Unofficial's <see cref="SocketServer"/> instead of Kestrel
/// (<c>[Listener] Transport = pipelines</c>), for measuring one transport against the other with
/// <c>bench/run.sh protocol</c>. It hosts the same <see cref="MilterConnectionHandler"/> with the same pipe sizes,
/// inline scheduling, MaxConnections, AllowFrom and drain; socket mode and group are applied by the listener
/// lifetime as for Kestrel.
/// </summary>
internal sealed class PipelinesSocketHost(
    MilterConnectionHandler handler,
    ListenerOptions listener,
    MilterOptions milter,
    IHostApplicationLifetime lifetime) : SocketServer, IHostedService
{
    private readonly LargeBlockMemoryPool _pool = new();
    private readonly CountdownEvent _open = new(1);
    private int _connections;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Like Kestrel's settings in DaemonHost: the receive pipe holds a whole frame, both run inline.
        var receive = new PipeOptions(_pool, PipeScheduler.Inline, PipeScheduler.Inline,
            pauseWriterThreshold: milter.MaxPacketSize + LargeBlockMemoryPool.BlockSize, resumeWriterThreshold: LargeBlockMemoryPool.BlockSize,
            minimumSegmentSize: LargeBlockMemoryPool.BlockSize, useSynchronizationContext: false);
        var send = new PipeOptions(_pool, PipeScheduler.Inline, PipeScheduler.Inline,
            pauseWriterThreshold: 2 * LargeBlockMemoryPool.BlockSize, resumeWriterThreshold: LargeBlockMemoryPool.BlockSize,
            minimumSegmentSize: LargeBlockMemoryPool.BlockSize, useSynchronizationContext: false);
        if (listener.Socket.UnixPath is { } path)
        {
            Listen(new UnixDomainSocketEndPoint(path), AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified, send, receive);
        }
        else
        {
            IPEndPoint ip = listener.Socket.Inet!;
            Listen(ip, ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp, send, receive);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Stop();
        _open.Signal();
        _open.Wait(listener.DrainTimeout, CancellationToken.None); // open messages finish; idle connections drain at once
        return Task.CompletedTask;
    }

    protected override Task OnClientConnectedAsync(in ClientConnection client) => ServeAsync(client.Transport, client.RemoteEndPoint);

    private async Task ServeAsync(IDuplexPipe transport, EndPoint? remote)
    {
        if (Interlocked.Increment(ref _connections) > listener.MaxConnections
            || (remote is IPEndPoint ip && !listener.AllowFrom.Allows(ip.Address))
            || !_open.TryAddCount())
        {
            Interlocked.Decrement(ref _connections);
            return; // the base class completes the pipes: the peer sees EOF at once
        }

        try
        {
            var info = new MilterConnectionInfo(Guid.NewGuid().ToString("N")[..12], remote);
            await handler.RunAsync(transport, info, lifetime.ApplicationStopping).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _connections);
            _open.Signal();
        }
    }

    protected override void Dispose(bool disposing)
    {
        _pool.Dispose();
        _open.Dispose();
        base.Dispose(disposing);
    }
}
