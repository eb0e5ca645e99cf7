using MimeKit;

namespace MilterSecureList.Mime;

/// <summary>The CMS carried by an S/MIME body, decoded, and how the body was encoded.</summary>
/// <param name="Classification">What the headers said.</param>
/// <param name="Cms">The ContentInfo bytes (DER or BER, exactly as the sender wrote them).</param>
/// <param name="BodyEncoding">How to write a new CMS back so that the unchanged headers still describe it:
/// <see cref="ContentEncoding.Base64"/> or <see cref="ContentEncoding.Binary"/> (raw).</param>
public sealed record SmimeBodyContent(SmimeClassification Classification, ReadOnlyMemory<byte> Cms, ContentEncoding BodyEncoding)
{
    /// <summary>True when the body was base64.</summary>
    public bool IsBase64 => BodyEncoding == ContentEncoding.Base64;
}

/// <summary>
/// Reads the CMS out of an S/MIME body and writes a new CMS back in the same transfer encoding (base64: RFC 2045 §6.8,
/// 76 columns, CRLF), streaming through MimeKit filters (<see cref="MimeFilterReadStream"/>); the base64 step itself is
/// <see cref="Base64DecoderFilter"/> and <see cref="Base64LineEncoderFilter"/>, see there why. The milter
/// uses it with the header fields from HEADER events and the spooled BODY; <see cref="SmimeBodyRewriter"/> uses it
/// for whole message files.
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

    /// <summary>Decodes the body according to the classification's transfer encoding.</summary>
    /// <exception cref="MimeFormatException">A byte outside the base64 alphabet, an unsupported transfer encoding,
    /// or more than <paramref name="maxCmsBytes"/>.</exception>
    /// <param name="classification">From <see cref="SmimeClassifier"/>.</param>
    /// <param name="body">The body, read once from its current position (a seekable body lets the CMS buffer be
    /// allocated once instead of growing by doubling, which would briefly need up to 3 times the CMS size).</param>
    /// <param name="maxCmsBytes">Limit of the decoded CMS.</param>
    public static SmimeBodyContent Read(SmimeClassification classification, Stream body, long maxCmsBytes = DefaultMaxCmsBytes)
    {
        long remaining = body.CanSeek ? body.Length - body.Position : -1;
        switch (classification.TransferEncoding)
        {
            case ContentEncoding.Base64:
                return new(classification, ReadBase64(body, ReadOnlyMemory<byte>.Empty, maxCmsBytes, remaining), ContentEncoding.Base64);
            case ContentEncoding.QuotedPrintable:
                // The new CMS would have to go back as quoted-printable (the headers stay as they are), and MimeKit's
                // encoder is for text: it turns every LF byte of binary data into a line break, which decodes as CRLF.
                // No client sends CMS this way (RFC 8551 §3.1.3 asks for base64), so the sender is told to resend.
                throw MimeFormatException.Create(
                    MimeErrorReason.UnsupportedTransferEncoding,
                    "a quoted-printable S/MIME body cannot be re-keyed; send it with Content-Transfer-Encoding base64 (as S/MIME clients do)");
            case ContentEncoding.Binary or ContentEncoding.EightBit:
                return new(classification, ReadAll(body, maxCmsBytes, remaining), ContentEncoding.Binary);
            case ContentEncoding.Default or ContentEncoding.SevenBit:
                return ReadSniffed(classification, body, maxCmsBytes, remaining);
            default:
                throw MimeFormatException.Create(
                    MimeErrorReason.UnsupportedTransferEncoding,
                    $"Content-Transfer-Encoding {classification.TransferEncoding?.ToString() ?? "(unknown token)"} is not supported for an S/MIME body (base64, binary, 8bit or 7bit expected)");
        }
    }

    /// <summary>The body for <paramref name="cms"/> in <paramref name="encoding"/>, encoded while it is read; the
    /// array is kept by reference, not copied. Base64 lines end in CRLF.</summary>
    public static Stream Encode(byte[] cms, ContentEncoding encoding)
    {
        var source = new MemoryStream(cms, writable: false);
        return encoding switch
        {
            ContentEncoding.Base64 => new MimeFilterReadStream(source, new Base64LineEncoderFilter()),
            ContentEncoding.Binary => source,
            _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "base64 or binary"),
        };
    }

    /// <summary>Writes a CMS as a body in <paramref name="encoding"/> (see <see cref="Encode"/>).</summary>
    public static void Write(ReadOnlySpan<byte> cms, ContentEncoding encoding, Stream output)
    {
        using Stream body = Encode(cms.ToArray(), encoding);
        body.CopyTo(output);
    }

    /// <summary>Writes a CMS as a body: base64 at 76 columns with CRLF (RFC 2045 §6.8), or the bytes as they are.</summary>
    public static void Write(ReadOnlySpan<byte> cms, bool base64, Stream output) =>
        Write(cms, base64 ? ContentEncoding.Base64 : ContentEncoding.Binary, output);

    private static ReadOnlyMemory<byte> ReadBase64(Stream body, ReadOnlyMemory<byte> head, long maxCmsBytes, long remaining)
    {
        // Not disposed: that would close the caller's body, and the filter stream holds nothing else.
        var decoded = new MimeFilterReadStream(body, head, new Base64DecoderFilter());
        return ReadAll(decoded, maxCmsBytes, remaining < 0 ? -1 : (remaining / 4 * 3) + 3);
    }

    // Without a usable Content-Transfer-Encoding the body may be base64 or raw DER. A ContentInfo
    // SEQUENCE starts with 0x30 and a length octet >= 0x80 (indefinite or long form) for any real
    // message, which is never base64 text ("MI..." in base64).
    private static SmimeBodyContent ReadSniffed(SmimeClassification classification, Stream body, long maxCmsBytes, long remaining)
    {
        byte[] head = new byte[2];
        int n = body.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        if (n == 2 && head[0] == 0x30 && head[1] >= 0x80)
        {
            var raw = new LimitedBuffer(maxCmsBytes, remaining);
            raw.Write(head);
            raw.ReadFrom(body);
            return new(classification, raw.Written, ContentEncoding.Binary);
        }

        return new(classification, ReadBase64(body, head.AsMemory(0, n), maxCmsBytes, remaining), ContentEncoding.Base64);
    }

    private static ReadOnlyMemory<byte> ReadAll(Stream source, long maxCmsBytes, long expectedLength)
    {
        var buffer = new LimitedBuffer(maxCmsBytes, expectedLength);
        buffer.ReadFrom(source);
        return buffer.Written;
    }

    /// <summary>A growable buffer that refuses to grow past a limit (bounded memory on hostile input).</summary>
    private sealed class LimitedBuffer
    {
        private const int InitialSize = 64 * 1024;
        private readonly long _limit;
        private readonly byte[] _probe = new byte[1];
        private byte[] _buffer;
        private int _count;

        public LimitedBuffer(long limit, long expectedLength)
        {
            _limit = limit;
            // Trust the hint only up to the limit: a lying length must not allocate more than we would accept.
            long initial = expectedLength > 0 ? expectedLength : InitialSize;
            _buffer = new byte[Math.Max(1, Math.Min(Math.Min(initial, limit), Array.MaxLength))];
        }

        public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _count);

        public void Write(ReadOnlySpan<byte> data)
        {
            if (_count + (long)data.Length > _limit)
            {
                throw TooLarge();
            }

            if (_buffer.Length - _count < data.Length)
            {
                long size = Math.Min(Math.Max((long)_count + data.Length, (long)_buffer.Length * 2), Math.Min(_limit, Array.MaxLength));
                Array.Resize(ref _buffer, (int)size);
            }

            data.CopyTo(_buffer.AsSpan(_count));
            _count += data.Length;
        }

        public void ReadFrom(Stream source)
        {
            while (true)
            {
                if (_count == _buffer.Length)
                {
                    // Full, often exactly (a length hint): one byte tells end of input from a longer body before growing.
                    if (source.Read(_probe) == 0)
                    {
                        return;
                    }

                    Write(_probe);
                    continue;
                }

                int read = source.Read(_buffer, _count, _buffer.Length - _count);
                if (read == 0)
                {
                    return;
                }

                _count += read;
                if (_count > _limit)
                {
                    throw TooLarge();
                }
            }
        }

        private MimeFormatException TooLarge() =>
            MimeFormatException.Create(MimeErrorReason.BodyTooLarge, $"S/MIME body is larger than {_limit} bytes");
    }
}
