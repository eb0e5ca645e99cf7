using System.Buffers;

namespace MilterSecureList.Mime;

/// <summary>The CMS carried by an S/MIME body, decoded, and how the body was encoded.</summary>
/// <param name="Classification">What the headers said.</param>
/// <param name="Cms">The ContentInfo bytes (DER or BER, exactly as the sender wrote them).</param>
/// <param name="IsBase64">True when the body was base64; write the new CMS back the same way.</param>
public sealed record SmimeBodyContent(SmimeClassification Classification, ReadOnlyMemory<byte> Cms, bool IsBase64);

/// <summary>
/// Reads the CMS out of an S/MIME body and writes a new CMS back in the same transfer encoding. The milter
/// uses this with the header fields from HEADER events and the spooled BODY; <see cref="SmimeBodyRewriter"/>
/// uses it for whole message files.
/// </summary>
public static class SmimeBodyCodec
{
    /// <summary>Default limit for the decoded CMS: 256 MiB.</summary>
    public const long DefaultMaxCmsBytes = 256L * 1024 * 1024;

    /// <summary>
    /// Classifies the headers and, when they announce encrypted S/MIME, decodes <paramref name="body"/>.
    /// Returns null when the message is not enveloped/authEnveloped S/MIME (the body is not read then).
    /// </summary>
    /// <exception cref="MimeFormatException">The body is S/MIME but badly encoded or too large.</exception>
    public static SmimeBodyContent? TryRead(IEnumerable<MimeHeader> headers, Stream body, long maxCmsBytes = DefaultMaxCmsBytes)
    {
        SmimeClassification classification = SmimeClassifier.Classify(headers);
        return classification.IsEncrypted ? Read(classification, body, maxCmsBytes) : null;
    }

    /// <inheritdoc cref="Read(SmimeClassification, Stream, long, long)"/>
    public static SmimeBodyContent Read(SmimeClassification classification, Stream body, long maxCmsBytes = DefaultMaxCmsBytes) =>
        Read(classification, body, maxCmsBytes, body.CanSeek ? body.Length - body.Position : -1);

    /// <summary>Decodes the body according to the classification's transfer encoding.</summary>
    /// <exception cref="MimeFormatException">Bad base64, an unsupported transfer encoding, or more than <paramref name="maxCmsBytes"/>.</exception>
    /// <param name="classification">From <see cref="SmimeClassifier"/>.</param>
    /// <param name="body">The body, read once from its current position.</param>
    /// <param name="maxCmsBytes">Limit of the decoded CMS.</param>
    /// <param name="bodyLengthHint">Body bytes still to read, or -1 if unknown. With it the CMS buffer is allocated once
    /// (about 3/4 of the body for base64) instead of growing by doubling, which would briefly need up to 3 times the CMS size.</param>
    public static SmimeBodyContent Read(SmimeClassification classification, Stream body, long maxCmsBytes, long bodyLengthHint)
    {
        long expected = bodyLengthHint < 0 ? -1
            : classification.TransferEncoding is ContentTransferEncoding.Binary or ContentTransferEncoding.EightBit ? bodyLengthHint
            : (bodyLengthHint / 4 * 3) + 3;
        var cms = new LimitedBufferWriter(maxCmsBytes, expected);
        bool base64 = ReadBody(body, classification.TransferEncoding, cms);
        return new SmimeBodyContent(classification, cms.WrittenMemory, base64);
    }

    /// <summary>Writes a CMS as a body: base64 at 76 columns with CRLF (RFC 2045 §6.8), or the bytes as they are.</summary>
    public static void Write(ReadOnlySpan<byte> cms, bool base64, Stream output)
    {
        if (base64)
        {
            Base64LineWriter.Encode(cms, output);
        }
        else
        {
            output.Write(cms);
        }
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
        private byte[] _buffer;

        public LimitedBufferWriter(long limit, long expectedLength)
        {
            _limit = limit;
            // Trust the hint only up to the limit: a lying length must not allocate more than we would accept.
            long initial = expectedLength > 0 ? Math.Min(Math.Min(expectedLength, limit), Array.MaxLength) : 64 * 1024;
            _buffer = new byte[Math.Max(initial, 16)];
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

}
