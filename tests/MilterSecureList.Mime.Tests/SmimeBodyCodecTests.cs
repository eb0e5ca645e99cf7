using System.Text;
using MimeKit;

namespace MilterSecureList.Mime.Tests;

public class SmimeBodyCodecTests : IClassFixture<SmimeInteropFixture>
{
    private static readonly MimeHeader EnvelopedType = new("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m");

    private readonly SmimeInteropFixture _fixture;

    public SmimeBodyCodecTests(SmimeInteropFixture fixture)
    {
        _fixture = fixture;
    }

    // What a milter gets from Postfix: the value after "Name:" minus one leading space, fold breaks as bare LF,
    // and the body with CRLF line ends.
    private static (List<MimeHeader> Headers, byte[] Body) AsMilterSees(byte[] message)
    {
        using RawMessage raw = MessageReader.Read(new MemoryStream(message));
        var headers = new List<MimeHeader>();
        foreach (Header field in raw.Header)
        {
            string value = Encoding.Latin1.GetString(field.RawValue).Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n');
            headers.Add(new MimeHeader(field.Field, value.StartsWith(' ') ? value[1..] : value));
        }

        using var body = new MemoryStream();
        raw.Body.CopyTo(body);
        string crlf = Encoding.Latin1.GetString(body.ToArray()).Replace("\r\n", "\n", StringComparison.Ordinal).Replace("\n", "\r\n", StringComparison.Ordinal);
        return (headers, Encoding.Latin1.GetBytes(crlf));
    }

    internal static byte[] DecodeBase64Lines(byte[] body) =>
        Convert.FromBase64String(Encoding.ASCII.GetString(body).Replace("\r\n", string.Empty, StringComparison.Ordinal));

    private static byte[] Encoded(byte[] cms, ContentEncoding encoding)
    {
        using Stream body = SmimeBodyCodec.Encode(cms, encoding);
        using var output = new MemoryStream();
        body.CopyTo(output);
        return output.ToArray();
    }

    private static SmimeBodyContent Read(byte[] body, string? transferEncoding, int readSize = int.MaxValue)
    {
        var headers = new List<MimeHeader> { EnvelopedType };
        if (transferEncoding is not null)
        {
            headers.Add(new MimeHeader("Content-Transfer-Encoding", transferEncoding));
        }

        return SmimeBodyCodec.TryRead(headers, new MessageReaderTests.TrickleStream(body, readSize))!;
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
        Assert.Equal(content.Cms.ToArray(), DecodeBase64Lines(Encoded(content.Cms.ToArray(), content.BodyEncoding)));
    }

    [Fact]
    public void DecodesARealBodyWhateverTheSplitOfTheReads()
    {
        var (headers, body) = AsMilterSees(_fixture.Message("cms-aes128-stream"));
        byte[] expected = SmimeBodyCodec.TryRead(headers, new MemoryStream(body))!.Cms.ToArray();
        for (int split = 0; split <= body.Length; split++)
        {
            SmimeBodyContent? content = SmimeBodyCodec.TryRead(headers, new SplitStream(body, split));
            Assert.True(content!.Cms.Span.SequenceEqual(expected), $"split at {split}");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(57)]
    [InlineData(58)]
    [InlineData((57 * 840) - 1)] // around one input block of the encoding stream
    [InlineData(57 * 840)]
    [InlineData((57 * 840) + 1)]
    [InlineData((2 * 57 * 840) + 5)]
    public void Base64BodiesAreWhatRfc2045Asks76ColumnsAndCrlf(int length)
    {
        byte[] cms = new byte[length];
        new Random(length).NextBytes(cms);
        byte[] body = Encoded(cms, ContentEncoding.Base64);
        string expected = length == 0 ? string.Empty : Convert.ToBase64String(cms, Base64FormattingOptions.InsertLineBreaks) + "\r\n";
        Assert.Equal(expected, Encoding.ASCII.GetString(body));
        foreach (int readSize in new[] { 1, 77, 4096, int.MaxValue })
        {
            Assert.Equal(cms, Read(body, "base64", readSize).Cms.ToArray());
        }
    }

    [Theory]
    [InlineData("binary")]
    [InlineData("8bit")]
    [InlineData("7bit")] // sniffed: a DER SEQUENCE with a long length is raw CMS whatever the header says
    [InlineData(null)]
    public void RawBodiesStayRaw(string? transferEncoding)
    {
        byte[] cms = [0x30, 0x82, 0x01, 0x00, .. Enumerable.Range(0, 256).Select(i => (byte)i)];
        SmimeBodyContent content = Read(cms, transferEncoding, readSize: 7);
        Assert.Equal(ContentEncoding.Binary, content.BodyEncoding);
        Assert.Equal(cms, content.Cms.ToArray());
        Assert.Equal(cms, Encoded(cms, content.BodyEncoding));
    }

    [Theory]
    [InlineData("7bit")]
    [InlineData(null)]
    public void Base64WithoutABase64HeaderIsSniffed(string? transferEncoding)
    {
        SmimeBodyContent content = Read("MIAGCSqG\r\n"u8.ToArray(), transferEncoding);
        Assert.True(content.IsBase64);
        Assert.Equal([0x30, 0x80, 0x06, 0x09, 0x2A, 0x86], content.Cms.ToArray());
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

    [Theory]
    [InlineData("QUJD!REVG", "'!' (0x21) at body offset 4")]
    [InlineData("QUJD\r\nRE-G", "'-' (0x2D) at body offset 8")]
    [InlineData("QUJD\0", "0x00 at body offset 4")]
    public void BytesOutsideTheBase64AlphabetAreRefusedWithTheirOffset(string body, string messagePart)
    {
        var ex = Assert.Throws<MimeFormatException>(() => Read(Encoding.Latin1.GetBytes(body), "base64"));
        Assert.Equal(MimeErrorReason.InvalidBase64Character, ex.Reason);
        Assert.EndsWith(messagePart, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("QUJD", "ABC")]
    [InlineData("QUI=", "AB")]
    [InlineData("QQ==", "A")]
    [InlineData(" Q U\tJ D \r\n", "ABC")]
    [InlineData("QQ=\r\n=\r\n\r\n", "A")]
    [InlineData("QUJD\nREVG\n", "ABCDEF")]
    [InlineData("\r\n\r\n", "")]
    public void Base64ToleratesLineWhiteSpaceAndPaddingWhateverTheReadSize(string body, string expected)
    {
        foreach (int readSize in new[] { 1, 2, 3, int.MaxValue })
        {
            Assert.Equal(expected, Encoding.ASCII.GetString(Read(Encoding.ASCII.GetBytes(body), "base64", readSize).Cms.Span));
        }
    }

    [Theory]
    [InlineData("=QUJ", "data after base64 padding at body offset 1")]
    [InlineData("QUJD=", "misplaced padding")]
    [InlineData("QQ===", "misplaced padding")]
    [InlineData("QQ==QUJD", "data after base64 padding at body offset 4")]
    [InlineData("QQ=", "misplaced padding")]
    [InlineData("QUJDR", "4-character group")]
    [InlineData("QQ", "4-character group")]
    public void Base64WithBadPaddingOrATruncatedGroupIsRefused(string body, string messagePart)
    {
        foreach (int readSize in new[] { 1, int.MaxValue })
        {
            var ex = Assert.Throws<MimeFormatException>(() => Read(Encoding.ASCII.GetBytes(body), "base64", readSize));
            Assert.Contains(messagePart, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TheOffsetOfABadCharacterDeepInALargeBodyIsExact()
    {
        byte[] body = Encoding.ASCII.GetBytes(Convert.ToBase64String(new byte[300_000], Base64FormattingOptions.InsertLineBreaks));
        body[200_001] = (byte)'*';
        var ex = Assert.Throws<MimeFormatException>(() => Read(body, "base64", readSize: 1000));
        Assert.EndsWith("at body offset 200001", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("quoted-printable")]
    [InlineData("x-uuencode")]
    [InlineData("x-private")]
    public void TransferEncodingsThatCannotCarryTheCmsAreRefused(string transferEncoding)
    {
        var ex = Assert.Throws<MimeFormatException>(() => Read("MIAGCSqG"u8.ToArray(), transferEncoding));
        Assert.Equal(MimeErrorReason.UnsupportedTransferEncoding, ex.Reason);
    }

    [Fact]
    public void BodiesOverTheLimitAreRefusedAtTheLimit()
    {
        var headers = new[] { EnvelopedType, new MimeHeader("Content-Transfer-Encoding", "binary") };
        Assert.Equal(100, SmimeBodyCodec.TryRead(headers, new MemoryStream(new byte[100]), maxCmsBytes: 100)!.Cms.Length);
        var ex = Assert.Throws<MimeFormatException>(() => SmimeBodyCodec.TryRead(headers, new UnknownLengthStream(new byte[101]), maxCmsBytes: 100));
        Assert.Equal(MimeErrorReason.BodyTooLarge, ex.Reason);
        Assert.Equal("S/MIME body is larger than 100 bytes", ex.Message);
    }

    [Fact]
    public void NotEncryptedMessagesGiveNullAndTheBodyIsNotRead()
    {
        var body = new MemoryStream("not base64 !!!"u8.ToArray());
        Assert.Null(SmimeBodyCodec.TryRead([new MimeHeader("Content-Type", "text/plain")], body));
        Assert.Equal(0, body.Position);
    }

    /// <summary>The first read returns the first <paramref name="split"/> bytes, the next ones the rest.</summary>
    private sealed class SplitStream(byte[] data, int split) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) =>
            base.Read(buffer, offset, Position < split ? Math.Min(count, split - (int)Position) : count);

        public override int Read(Span<byte> buffer)
        {
            byte[] array = new byte[buffer.Length];
            int n = Read(array, 0, array.Length);
            array.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
    }

    /// <summary>A body whose length is not known up front, so the buffer must grow and stop at the limit.</summary>
    private sealed class UnknownLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
