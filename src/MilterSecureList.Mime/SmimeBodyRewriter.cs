namespace MilterSecureList.Mime;

/// <summary>Limits for <see cref="SmimeBodyRewriter"/>.</summary>
public sealed class SmimeRewriteOptions
{
    /// <summary>Largest header block accepted; default <see cref="MessageReader.DefaultMaxHeaderBytes"/>.</summary>
    public int MaxHeaderBytes { get; init; } = MessageReader.DefaultMaxHeaderBytes;

    /// <summary>Largest decoded CMS body accepted; default <see cref="SmimeBodyCodec.DefaultMaxCmsBytes"/>. The whole CMS is held in memory once.</summary>
    public long MaxCmsBytes { get; init; } = SmimeBodyCodec.DefaultMaxCmsBytes;
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
        long start = messageIn.CanSeek ? messageIn.Position : -1;
        using RawMessage message = MessageReader.Read(new NonClosingStream(messageIn), options.MaxHeaderBytes);
        SmimeClassification classification = SmimeClassifier.Classify(message.Header.ToMimeHeaders());
        if (!classification.IsEncrypted)
        {
            throw MimeFormatException.Create(
                MimeErrorReason.NotSmime, $"message is not S/MIME enveloped or authEnveloped data: {classification.Reason}");
        }

        long bodyLength = start >= 0 ? messageIn.Length - start - message.Header.Length : -1;
        SmimeBodyContent body = SmimeBodyCodec.Read(classification, message.Body, options.MaxCmsBytes, bodyLength);
        ReadOnlyMemory<byte> output = transformCms(body.Cms);

        MessageWriter.WriteHeader(message.Header, messageOut);
        SmimeBodyCodec.Write(output.Span, body.IsBase64, messageOut);
        messageOut.Flush();
        return new SmimeRewriteResult(classification, body.IsBase64, body.Cms.Length, output.Length);
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
