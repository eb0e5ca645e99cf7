using MimeKit.IO.Filters;

namespace MilterSecureList.Mime;

/// <summary>
/// A read-only stream that runs MimeKit filters (<see cref="EncoderFilter"/>, <see cref="DecoderFilter"/>,
/// <see cref="Unix2DosFilter"/>, ...) over another stream while it is read, one input block at a time, so neither
/// side is ever held whole a second time. The milter hands it to the protocol layer as the replacement body (a
/// re-keyed 50 MB post never exists again as 67 MB of base64 text), and <see cref="SmimeBodyCodec"/> decodes
/// bodies with it. MimeKit's own <c>FilteredStream</c> filters on write; read through, it drops what the filters
/// still hold at the end of the input (the last base64 line), which is why this pulls and flushes itself.
/// </summary>
public sealed class MimeFilterReadStream : Stream
{
    /// <summary>A whole number of 57-byte base64 lines (76 characters): one block encodes to one 64 KiB write.</summary>
    private const int InputSize = 57 * 840;

    private readonly Stream _source;
    private readonly IMimeFilter[] _filters;
    private readonly byte[] _input = new byte[InputSize];
    private ReadOnlyMemory<byte> _prefix;
    private byte[] _output = [];
    private int _outputIndex;
    private int _outputLength;
    private bool _flushed;

    /// <param name="source">Read front to back; disposed with this stream.</param>
    /// <param name="prefix">Bytes already taken from <paramref name="source"/> that come first (at most one block).</param>
    /// <param name="filters">Applied in order to each block; each filter's <c>Flush</c> runs at the end of the input.</param>
    public MimeFilterReadStream(Stream source, ReadOnlyMemory<byte> prefix, params IMimeFilter[] filters)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefix.Length, InputSize);
        _source = source;
        _prefix = prefix;
        _filters = filters;
    }

    public MimeFilterReadStream(Stream source, params IMimeFilter[] filters)
        : this(source, ReadOnlyMemory<byte>.Empty, filters)
    {
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (_outputLength == 0)
        {
            if (_flushed)
            {
                return 0;
            }

            FilterNextBlock();
        }

        int n = Math.Min(buffer.Length, _outputLength);
        _output.AsSpan(_outputIndex, n).CopyTo(buffer);
        _outputIndex += n;
        _outputLength -= n;
        return n;
    }

    // Sources are in memory or the body spool: reading them does not block, so neither does this.
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        new(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _source.Dispose();
        }

        base.Dispose(disposing);
    }

    private void FilterNextBlock()
    {
        int read;
        if (!_prefix.IsEmpty)
        {
            _prefix.Span.CopyTo(_input);
            read = _prefix.Length;
            _prefix = ReadOnlyMemory<byte>.Empty;
        }
        else
        {
            read = _source.Read(_input, 0, _input.Length);
        }

        byte[] data = _input;
        int index = 0;
        int length = read;
        foreach (IMimeFilter filter in _filters)
        {
            data = read > 0
                ? filter.Filter(data, index, length, out index, out length)
                : filter.Flush(data, index, length, out index, out length);
        }

        _flushed = read == 0;
        _output = data;
        _outputIndex = index;
        _outputLength = length;
    }
}
