using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace MilterSecureList.Protocol.Session;

/// <summary>
/// The message body as received: pooled memory up to a threshold, the rest in a temp file that is deleted
/// when the spool is disposed (FileOptions.DeleteOnClose). Memory per message is bounded by the threshold
/// (rounded up to one segment). Disposed by the session after the message; do not keep it.
/// </summary>
public sealed class MessageBodySpool : IDisposable
{
    private static long s_totalBytes;

    private const int SegmentSize = 64 * 1024;
    private readonly List<byte[]> _segments = [];
    private readonly long _memoryThreshold;
    private readonly string _tempDirectory;
    private long _memoryLength;
    private SafeFileHandle? _file;
    private long _fileLength;
    private bool _disposed;

    public MessageBodySpool(long memoryThreshold, string? tempDirectory = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(memoryThreshold);
        _memoryThreshold = memoryThreshold;
        _tempDirectory = tempDirectory ?? Path.GetTempPath();
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
                _segments.Add(ArrayPool<byte>.Shared.Rent(SegmentSize));
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

        _file ??= File.OpenHandle(
            Path.Combine(_tempDirectory, "msl-body-" + Guid.NewGuid().ToString("N") + ".tmp"),
            FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        RandomAccess.Write(_file, data, _fileLength);
        _fileLength += data.Length;
        Interlocked.Add(ref s_totalBytes, data.Length);
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
            ArrayPool<byte>.Shared.Return(s);
        }

        _segments.Clear();
        _file?.Dispose();
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
