using System.Text;

namespace MilterSecureList.Mime.Tests;

public class SmimeBodyCodecTests : IClassFixture<SmimeInteropFixture>
{
    private readonly SmimeInteropFixture _fixture;

    public SmimeBodyCodecTests(SmimeInteropFixture fixture)
    {
        _fixture = fixture;
    }

    // What a milter gets from Postfix: the value after "Name:" minus one leading space, fold breaks as bare LF,
    // and the body with CRLF line ends (docs/protocol.md §3 HEADER and BODY).
    private static (List<MimeHeader> Headers, byte[] Body) AsMilterSees(byte[] message)
    {
        using RawMessage raw = MessageReader.Read(new MemoryStream(message));
        var headers = new List<MimeHeader>();
        foreach (RawHeaderField field in raw.Header)
        {
            string text = Encoding.Latin1.GetString(field.RawBytes.Span);
            string value = text[(text.IndexOf(':', StringComparison.Ordinal) + 1)..].Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n');
            headers.Add(new MimeHeader(field.Name, value.StartsWith(' ') ? value[1..] : value));
        }

        using var body = new MemoryStream();
        raw.Body.CopyTo(body);
        string crlf = Encoding.Latin1.GetString(body.ToArray()).Replace("\r\n", "\n", StringComparison.Ordinal).Replace("\n", "\r\n", StringComparison.Ordinal);
        return (headers, Encoding.Latin1.GetBytes(crlf));
    }

    [Theory]
    [InlineData("cms-default-3des", SmimeKind.EnvelopedData)]
    [InlineData("cms-aes256-gcm", SmimeKind.AuthEnvelopedData)]
    [InlineData("smime-stream", SmimeKind.EnvelopedData)]
    [InlineData("gpgsm-aes128", SmimeKind.EnvelopedData)]
    public void ReadsTheCmsFromMilterHeadersAndBody(string sender, SmimeKind kind)
    {
        var (headers, body) = AsMilterSees(_fixture.Message(sender));
        SmimeBodyContent? content = SmimeBodyCodec.TryRead(headers, new MemoryStream(body));
        Assert.NotNull(content);
        Assert.Equal(kind, content.Classification.Kind);
        Assert.True(content.IsBase64);
        Assert.Equal(_fixture.Plaintext, _fixture.DecryptCms(content.Cms.ToArray()));

        using var rewritten = new MemoryStream();
        SmimeBodyCodec.Write(content.Cms.Span, content.IsBase64, rewritten);
        Assert.Equal(content.Cms.ToArray(), Base64BodyDecoder.Decode(rewritten.ToArray()));
    }

    [Fact]
    public void DecodesARealBodyAtEverySplitPoint()
    {
        var (headers, body) = AsMilterSees(_fixture.Message("cms-aes128-stream"));
        byte[] expected = SmimeBodyCodec.TryRead(headers, new MemoryStream(body))!.Cms.ToArray();
        var output = new System.Buffers.ArrayBufferWriter<byte>(expected.Length + 3);
        for (int split = 0; split <= body.Length; split++)
        {
            output.ResetWrittenCount();
            var decoder = new Base64BodyDecoder();
            decoder.Decode(body.AsSpan(0, split), output);
            decoder.Decode(body.AsSpan(split), output);
            decoder.Complete(output);
            Assert.True(output.WrittenSpan.SequenceEqual(expected), $"split at {split}");
        }
    }

    [Fact]
    public void FoldedMilterContentTypeIsRecognised()
    {
        var headers = new List<MimeHeader>
        {
            new("Subject", "x"),
            new("Content-Type", "application/pkcs7-mime;\n\tsmime-type=enveloped-data;\n\tname=\"smime.p7m\""),
            new("Content-Transfer-Encoding", "base64"),
        };
        SmimeBodyContent? content = SmimeBodyCodec.TryRead(headers, new MemoryStream("MIAGCSqG\r\n"u8.ToArray()));
        Assert.NotNull(content);
        Assert.Equal([0x30, 0x80, 0x06, 0x09, 0x2A, 0x86], content.Cms.ToArray());
    }

    [Fact]
    public void NotEncryptedMessagesGiveNullAndTheBodyIsNotRead()
    {
        var body = new MemoryStream("not base64 !!!"u8.ToArray());
        Assert.Null(SmimeBodyCodec.TryRead([new MimeHeader("Content-Type", "text/plain")], body));
        Assert.Equal(0, body.Position);
    }
}
