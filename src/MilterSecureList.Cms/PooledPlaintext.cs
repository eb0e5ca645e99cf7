namespace MilterSecureList.Cms;

/// <summary>Plaintext in a buffer rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/> (its first LENGTH
/// bytes); disposing zeroes it and gives it back.</summary>
public sealed class PooledPlaintext : IDisposable
{
    private byte[]? _buffer;
    private readonly int _length;

    public PooledPlaintext(byte[] buffer, int length)
    {
        _buffer = buffer;
        _length = length;
    }

    /// <summary>A copy of SOURCE in a rented buffer (the caller zeroes SOURCE when it is secret).</summary>
    public static PooledPlaintext CopyOf(ReadOnlySpan<byte> source)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(source.Length, 1));
        source.CopyTo(buffer);
        return new PooledPlaintext(buffer, source.Length);
    }

    public ReadOnlyMemory<byte> Memory => (_buffer ?? throw new ObjectDisposedException(nameof(PooledPlaintext))).AsMemory(0, _length);

    public ReadOnlySpan<byte> Span => (_buffer ?? throw new ObjectDisposedException(nameof(PooledPlaintext))).AsSpan(0, _length);

    public void Dispose()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }
}
