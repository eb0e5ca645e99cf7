using System.Buffers;

namespace MilterSecureList.Mime;

/// <summary>Limits for <see cref="SmimeBodyRewriter"/>.</summary>
public sealed class SmimeRewriteOptions
{
    /// <summary>Largest header block accepted; default <see cref="MessageReader.DefaultMaxHeaderBytes"/>.</summary>
    public int MaxHeaderBytes { get; init; } = MessageReader.DefaultMaxHeaderBytes;

    /// <summary>Largest decoded CMS body accepted; default 256 MiB. The whole CMS is held in memory once.</summary>
    public long MaxCmsBytes { get; init; } = 256L * 1024 * 1024;
}

/// <summary>What <see cref="SmimeBodyRewriter.Rewrite"/> did.</summary>
public sealed record SmimeRewriteResult(SmimeClassification Classification, bool BodyWasBase64, long InputCmsLength, long OutputCmsLength);

/// <summary>
/// Replaces the CMS body of a whole S/MIME message: reads the headers, checks that the message is enveloped
/// or authEnveloped S/MIME, decodes the body, hands the CMS to a transform (the re-wrap engine) and writes the
/// same header fields untouched (CRLF line ends) followed by the new CMS re-encoded in the body's encoding
/// (base64 at 76 columns, or raw for binary bodies).
/// </summary>
public static class SmimeBodyRewriter
{
    /// <exception cref="MimeFormatException">Reason <see cref="MimeErrorReason.NotSmime"/> when the message is not encrypted S/MIME; other reasons for bad input.</exception>
    public static SmimeRewriteResult Rewrite(
        Stream messageIn,
        Stream messageOut,
        Func<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>> transformCms,
        SmimeRewriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transformCms);
        options ??= new SmimeRewriteOptions();
        using RawMessage message = MessageReader.Read(new NonClosingStream(messageIn), options.MaxHeaderBytes);
        SmimeClassification classification = SmimeClassifier.Classify(message.Header.ToMimeHeaders());
        if (!classification.IsEncrypted)
        {
            throw MimeFormatException.Create(
                MimeErrorReason.NotSmime, $"message is not S/MIME enveloped or authEnveloped data: {classification.Reason}");
        }

        var cms = new LimitedBufferWriter(options.MaxCmsBytes);
        bool base64 = ReadBody(message.Body, classification.TransferEncoding, cms);
        ReadOnlyMemory<byte> output = transformCms(cms.WrittenMemory);

        MessageWriter.WriteHeader(message.Header, messageOut);
        if (base64)
        {
            Base64LineWriter.Encode(output.Span, messageOut);
        }
        else
        {
            messageOut.Write(output.Span);
        }

        messageOut.Flush();
        return new SmimeRewriteResult(classification, base64, cms.WrittenCount, output.Length);
    }

    // Returns true when the body was base64.
    private static bool ReadBody(Stream body, ContentTransferEncoding encoding, LimitedBufferWriter cms)
    {
        switch (encoding)
        {
            case ContentTransferEncoding.Base64:
                Base64BodyDecoder.Decode(body, cms);
                return true;
            case ContentTransferEncoding.Binary or ContentTransferEncoding.EightBit:
                CopyRaw(body, cms, ReadOnlySpan<byte>.Empty);
                return false;
            case ContentTransferEncoding.None or ContentTransferEncoding.SevenBit:
                return ReadSniffed(body, cms);
            default:
                throw MimeFormatException.Create(
                    MimeErrorReason.UnsupportedTransferEncoding,
                    $"Content-Transfer-Encoding {encoding} is not supported for an S/MIME body (base64, binary or 8bit expected)");
        }
    }

    // Without a usable Content-Transfer-Encoding the body may be base64 or raw DER. A ContentInfo
    // SEQUENCE starts with 0x30 and a length octet >= 0x80 (indefinite or long form) for any real
    // message, which is never base64 text ("MI..." in base64).
    private static bool ReadSniffed(Stream body, LimitedBufferWriter cms)
    {
        Span<byte> head = stackalloc byte[2];
        int n = body.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        head = head[..n];
        bool raw = n == 2 && head[0] == 0x30 && head[1] >= 0x80;
        if (raw)
        {
            CopyRaw(body, cms, head);
            return false;
        }

        var decoder = new Base64BodyDecoder();
        decoder.Decode(head, cms);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int read;
            while ((read = body.Read(buffer, 0, buffer.Length)) > 0)
            {
                decoder.Decode(buffer.AsSpan(0, read), cms);
            }

            decoder.Complete(cms);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void CopyRaw(Stream body, LimitedBufferWriter cms, ReadOnlySpan<byte> head)
    {
        cms.Write(head);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            int read;
            while ((read = body.Read(buffer, 0, buffer.Length)) > 0)
            {
                cms.Write(buffer.AsSpan(0, read));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A growable buffer that refuses to grow past a limit (bounded memory on hostile input).</summary>
    private sealed class LimitedBufferWriter : IBufferWriter<byte>
    {
        private readonly long _limit;
        private byte[] _buffer = new byte[64 * 1024];

        public LimitedBufferWriter(long limit)
        {
            _limit = limit;
        }

        public int WrittenCount { get; private set; }

        public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, WrittenCount);

        public void Advance(int count)
        {
            if (WrittenCount + (long)count > _limit)
            {
                throw MimeFormatException.Create(MimeErrorReason.BodyTooLarge, $"S/MIME body is larger than {_limit} bytes");
            }

            WrittenCount += count;
        }

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsMemory(WrittenCount);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsSpan(WrittenCount);
        }

        public void Write(ReadOnlySpan<byte> data)
        {
            data.CopyTo(GetSpan(data.Length));
            Advance(data.Length);
        }

        private void Ensure(int sizeHint)
        {
            sizeHint = Math.Max(sizeHint, 1);
            if (_buffer.Length - WrittenCount >= sizeHint)
            {
                return;
            }

            long needed = (long)WrittenCount + sizeHint;
            long size = Math.Max(needed, Math.Min((long)_buffer.Length * 2, Array.MaxLength));
            if (needed > Array.MaxLength)
            {
                throw MimeFormatException.Create(MimeErrorReason.BodyTooLarge, $"S/MIME body is larger than {Array.MaxLength} bytes");
            }

            Array.Resize(ref _buffer, (int)size);
        }
    }

    /// <summary>Keeps the caller's input stream open when the message wrapper is disposed.</summary>
    private sealed class NonClosingStream : Stream
    {
        private readonly Stream _inner;

        public NonClosingStream(Stream inner)
        {
            _inner = inner;
        }

        public override bool CanRead => _inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => _inner.Read(buffer);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
