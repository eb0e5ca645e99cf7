using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace MilterSecureList.Daemon.Hosting;

/// <summary>
/// Memory pool for Kestrel's socket transport with 128 KiB blocks instead of Kestrel's 4 KiB ones. Milter traffic
/// is mostly 64 KiB BODY/REPLBODY frames; with 4 KiB blocks a 1 MB body costs hundreds of recv/send calls and a
/// frame spread over 17 segments, with 64 KiB blocks a frame (65540 bytes with its header) never fits one
/// block and each read takes at most 64 KiB. A 128 KiB block holds two frames, so a 1 MB body arrives in about
/// half the recvmsg calls (docs/design.md "Threads and memory in the daemon"). A bounded number of blocks is kept for reuse; the rest are ordinary (unpinned)
/// arrays the GC reclaims early, so a burst does not leave pinned garbage behind.
/// </summary>
internal sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 128 * 1024;
    private const int MaxRetained = 128; // 16 MiB of idle blocks at most

    private readonly ConcurrentQueue<byte[]> _free = new();
    private int _retained;

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        if (_free.TryDequeue(out byte[]? block))
        {
            Interlocked.Decrement(ref _retained);
        }
        else
        {
            block = GC.AllocateUninitializedArray<byte>(BlockSize);
        }

        return new Lease(this, block);
    }

    protected override void Dispose(bool disposing) => _free.Clear();

    private void Return(byte[] block)
    {
        if (Interlocked.Increment(ref _retained) <= MaxRetained)
        {
            _free.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _retained);
        }
    }

    private sealed class Lease(LargeBlockMemoryPool pool, byte[] block) : IMemoryOwner<byte>
    {
        private byte[]? _block = block;

        public Memory<byte> Memory => _block ?? throw new ObjectDisposedException(nameof(Lease));

        public void Dispose()
        {
            byte[]? b = Interlocked.Exchange(ref _block, null);
            if (b is not null)
            {
                pool.Return(b);
            }
        }
    }
}

/// <summary>Registered in DI so Kestrel's socket transport uses <see cref="LargeBlockMemoryPool"/>.</summary>
internal sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    public static int Created;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        Interlocked.Increment(ref Created);
        return new LargeBlockMemoryPool();
    }
}
