namespace MilterSecureList.Mime;

/// <summary>Limits for <see cref="SmimeBodyRewriter"/>.</summary>
public sealed class SmimeRewriteOptions
{
    /// <summary>Largest decoded CMS body accepted; default <see cref="SmimeBodyCodec.DefaultMaxCmsBytes"/>. The whole CMS is held in memory once.</summary>
    public long MaxCmsBytes { get; init; } = SmimeBodyCodec.DefaultMaxCmsBytes;
}

/// <summary>What <see cref="SmimeBodyRewriter.Rewrite"/> did.</summary>
public sealed record SmimeRewriteResult(SmimeClassification Classification, bool BodyWasBase64, long InputCmsLength, long OutputCmsLength);

/// <summary>
/// Replaces the CMS body of a whole S/MIME message: reads the headers, checks that the message is enveloped
/// or authEnveloped S/MIME, decodes the body, hands the CMS to a transform (the re-wrap engine) and writes the
/// same header fields untouched (CRLF line ends) followed by the new CMS re-encoded in the body's encoding.
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
        using RawMessage message = MessageReader.Read(messageIn);
        SmimeClassification classification = SmimeClassifier.Classify(message.Header);
        if (!classification.IsEncrypted)
        {
            throw MimeFormatException.Create(
                MimeErrorReason.NotSmime, $"message is not S/MIME enveloped or authEnveloped data: {classification.Reason}");
        }

        SmimeBodyContent body = SmimeBodyCodec.Read(classification, message.Body, options.MaxCmsBytes);
        ReadOnlyMemory<byte> output = transformCms(body.Cms);

        MessageWriter.WriteHeader(message.Header, messageOut);
        SmimeBodyCodec.Write(output.Span, body.BodyEncoding, messageOut);
        messageOut.Flush();
        return new SmimeRewriteResult(classification, body.IsBase64, body.Cms.Length, output.Length);
    }
}
