using System.Buffers;

namespace MilterSecureList.Mime;

/// <summary>An <see cref="IBufferWriter{T}"/> that passes what is written on to a stream in pooled blocks.</summary>
internal sealed class StreamBufferWriter : IBufferWriter<byte>
{
    private const int BlockSize = 64 * 1024;

    private readonly Stream _stream;
    private byte[] _buffer = new byte[BlockSize];
    private int _count;

    public StreamBufferWriter(Stream stream)
    {
        _stream = stream;
    }

    public void Advance(int count) => _count += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_count);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_count);
    }

    public void Flush()
    {
        if (_count > 0)
        {
            _stream.Write(_buffer, 0, _count);
            _count = 0;
        }
    }

    private void Ensure(int sizeHint)
    {
        sizeHint = Math.Max(sizeHint, 1);
        if (_buffer.Length - _count >= sizeHint)
        {
            return;
        }

        Flush();
        if (_buffer.Length < sizeHint)
        {
            _buffer = new byte[sizeHint];
        }
    }
}
