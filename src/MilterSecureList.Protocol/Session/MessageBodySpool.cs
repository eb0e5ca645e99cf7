using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace MilterSecureList.Protocol.Session;

/// <summary>
/// The message body as received: pooled memory up to a threshold, the rest in a temp file. Memory per message is
/// bounded by the threshold (rounded up to one segment), memory of all messages together by a
/// <see cref="SpoolMemoryBudget"/>. Disposed by the session after the message; do not keep it.
/// The temp file is either the spool's own (deleted when the spool is disposed) or a connection's reusable
/// <see cref="SpoolFile"/> (an unlinked file: no per-message create/delete, nothing left behind after a crash).
/// </summary>
public sealed class MessageBodySpool : IDisposable
{
    private static long s_totalBytes;

    private const int SegmentSize = 64 * 1024;

    // A dedicated pool: the shared one keeps few 64 KiB arrays per core, so concurrent large messages would
    // allocate and drop arrays continuously. Up to 256 idle segments (16 MiB) are kept.
    private static readonly ArrayPool<byte> s_pool = ArrayPool<byte>.Create(SegmentSize, 256);
    private readonly List<byte[]> _segments = [];
    private readonly long _memoryThreshold;
    private readonly string _tempDirectory;
    private readonly SpoolFile? _shared;
    private readonly SpoolMemoryBudget _budget;
    private long _memoryLength;
    private SafeFileHandle? _file;
    private long _fileLength;
    private bool _disposed;

    public MessageBodySpool(long memoryThreshold, string? tempDirectory = null, SpoolMemoryBudget? budget = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(memoryThreshold);
        _memoryThreshold = memoryThreshold;
        _tempDirectory = tempDirectory ?? Path.GetTempPath();
        _budget = budget ?? SpoolMemoryBudget.Unlimited;
    }

    /// <summary>A spool that spills into <paramref name="file"/> (reused across the connection's messages).</summary>
    public MessageBodySpool(long memoryThreshold, SpoolFile file, SpoolMemoryBudget? budget = null)
        : this(memoryThreshold, file.Directory, budget)
    {
        _shared = file;
    }

    /// <summary>Total body bytes stored.</summary>
    public long Length => _memoryLength + _fileLength;

    /// <summary>Body bytes held by all live spools of this process (memory and temp files): a metrics gauge.</summary>
    public static long TotalSpooledBytes => Interlocked.Read(ref s_totalBytes);

    /// <summary>True once the body outgrew the memory threshold and continues in a temp file.</summary>
    public bool IsSpilledToFile => _file is not null;

    public void Append(ReadOnlySequence<byte> data)
    {
        foreach (ReadOnlyMemory<byte> m in data)
        {
            Append(m.Span);
        }
    }

    public void Append(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (!data.IsEmpty && _file is null)
        {
            long room = _memoryThreshold - _memoryLength;
            if (room <= 0)
            {
                break;
            }

            int offset = (int)(_memoryLength % SegmentSize);
            if (offset == 0)
            {
                if (!_budget.TryReserve(SegmentSize))
                {
                    break; // the process-wide budget is spent: the rest of this body goes to the file
                }

                _segments.Add(s_pool.Rent(SegmentSize));
            }

            int n = (int)Math.Min(Math.Min(data.Length, SegmentSize - offset), room);
            data[..n].CopyTo(_segments[^1].AsSpan(offset));
            _memoryLength += n;
            Interlocked.Add(ref s_totalBytes, n);
            data = data[n..];
        }

        if (data.IsEmpty)
        {
            return;
        }

        _file ??= _shared is not null ? _shared.Acquire() : SpoolFile.CreateUnlinked(_tempDirectory);
        try
        {
            RandomAccess.Write(_file, data, _fileLength);
        }
        catch (IOException)
        {
            // Disk full: give back what the partial write took, so the next message finds the space again.
            TryTruncate(_file, _fileLength);
            throw;
        }

        _fileLength += data.Length;
        Interlocked.Add(ref s_totalBytes, data.Length);
    }

    private static void TryTruncate(SafeFileHandle file, long length)
    {
        try
        {
            RandomAccess.SetLength(file, length);
        }
        catch (IOException)
        {
            // The write's own error is the one to report.
        }
    }

    /// <summary>A read-only stream over the whole body; several may be open at once.</summary>
    public Stream OpenRead()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new SpoolReadStream(this);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Interlocked.Add(ref s_totalBytes, -Length);
        foreach (byte[] s in _segments)
        {
            s_pool.Return(s);
        }

        _budget.Release((long)_segments.Count * SegmentSize);

        _segments.Clear();
        if (_shared is not null)
        {
            if (_file is not null)
            {
                _shared.Release(_fileLength);
            }
        }
        else
        {
            _file?.Dispose();
        }
    }

    private int ReadAt(long position, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (position < _memoryLength)
        {
            int segment = (int)(position / SegmentSize);
            int offset = (int)(position % SegmentSize);
            int n = (int)Math.Min(Math.Min(destination.Length, SegmentSize - offset), _memoryLength - position);
            _segments[segment].AsSpan(offset, n).CopyTo(destination);
            return n;
        }

        long filePos = position - _memoryLength;
        if (_file is null || filePos >= _fileLength)
        {
            return 0;
        }

        int want = (int)Math.Min(destination.Length, _fileLength - filePos);
        return RandomAccess.Read(_file, destination[..want], filePos);
    }

    private sealed class SpoolReadStream(MessageBodySpool spool) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => spool.Length;

        public override long Position
        {
            get => _position;
            set => _position = value is >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = spool.ReadAt(_position, buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => spool.Length + offset,
            };
            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>
/// A connection's spill file for message bodies, created on first use and reused for every message on the
/// connection. It is unlinked right after creation, so only our descriptor reaches it and it vanishes with the
/// process. Kept small: truncated after a message that used more than <see cref="KeepBytes"/>.
/// </summary>
public sealed class SpoolFile : IDisposable
{
    private const long KeepBytes = 4 * 1024 * 1024;
    private SafeFileHandle? _handle;
    private bool _inUse;

    public SpoolFile(string? directory = null)
    {
        Directory = directory ?? Path.GetTempPath();
    }

    public string Directory { get; }

    /// <summary>Creates a temp file and unlinks it at once (the descriptor keeps it alive).</summary>
    public static SafeFileHandle CreateUnlinked(string directory)
    {
        string path = Path.Combine(directory, "msl-body-" + Guid.NewGuid().ToString("N") + ".tmp");
        SafeFileHandle handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // DeleteOnClose still removes it when the handle closes.
        }

        return handle;
    }

    internal SafeFileHandle Acquire()
    {
        if (_inUse)
        {
            throw new InvalidOperationException("the connection's spool file is already in use by another message");
        }

        _handle ??= CreateUnlinked(Directory); // may fail (disk full): the file is then not in use
        _inUse = true;
        return _handle;
    }

    internal void Release(long usedBytes)
    {
        _inUse = false;
        if (usedBytes > KeepBytes && _handle is not null)
        {
            RandomAccess.SetLength(_handle, 0); // give the disk space back after a large message
        }
    }

    public void Dispose()
    {
        _handle?.Dispose();
        _handle = null;
    }
}
