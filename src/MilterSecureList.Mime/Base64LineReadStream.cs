namespace MilterSecureList.Mime;

/// <summary>
/// The base64 body of <paramref name="data"/> as a read-only, seekable stream, produced on demand block by block
/// (the same bytes as <see cref="Base64LineWriter"/>: 76 columns, CRLF). The milter hands it to the protocol layer
/// as the replacement body, so a re-keyed 50 MB message never exists a second time as 67 MB of base64 text.
/// </summary>
/// <param name="data">The bytes to encode; kept by reference, not copied.</param>
public sealed class Base64LineReadStream(ReadOnlyMemory<byte> data) : Stream
{
    // A block is a whole number of lines, so each block encodes independently to exactly BlockOutput bytes
    // (only the last may be shorter) and any output position maps to one block.
    private const int LinesPerBlock = 256;
    private const int BlockInput = Base64LineWriter.LineLength / 4 * 3 * LinesPerBlock;
    private const int BlockOutput = (Base64LineWriter.LineLength + 2) * LinesPerBlock;

    private readonly MemoryStream _block = new(BlockOutput);
    private readonly long _length = Base64LineWriter.GetEncodedLength(data.Length);
    private long _blockIndex = -1;
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int total = 0;
        while (!buffer.IsEmpty && _position < _length)
        {
            long index = _position / BlockOutput;
            if (index != _blockIndex)
            {
                int start = (int)(index * BlockInput);
                _block.SetLength(0);
                Base64LineWriter.Encode(data.Span.Slice(start, Math.Min(BlockInput, data.Length - start)), _block);
                _blockIndex = index;
            }

            _block.Position = _position - (index * BlockOutput);
            int n = _block.Read(buffer);
            buffer = buffer[n..];
            _position += n;
            total += n;
        }

        return total;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => _length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(target, nameof(offset));
        _position = target;
        return target;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _block.Dispose();
        }

        base.Dispose(disposing);
    }
}
