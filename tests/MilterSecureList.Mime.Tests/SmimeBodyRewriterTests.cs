using System.Text;
using MimeKit;

namespace MilterSecureList.Mime.Tests;

public class SmimeBodyRewriterTests : IClassFixture<SmimeInteropFixture>
{
    private readonly SmimeInteropFixture _fixture;

    public SmimeBodyRewriterTests(SmimeInteropFixture fixture)
    {
        _fixture = fixture;
    }

    public static TheoryData<string, bool> SendersAndLineEnds()
    {
        var data = new TheoryData<string, bool>();
        foreach (string sender in SmimeInteropFixture.Senders)
        {
            data.Add(sender, false);
            data.Add(sender, true);
        }

        return data;
    }

    private static byte[] ToCrlf(byte[] message) =>
        Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(message).Replace("\r\n", "\n", StringComparison.Ordinal).Replace("\n", "\r\n", StringComparison.Ordinal));

    private static (SmimeRewriteResult Result, byte[] Output) Rewrite(byte[] message, Func<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>> transform, int readSize = int.MaxValue)
    {
        using var output = new MemoryStream();
        SmimeRewriteResult result = SmimeBodyRewriter.Rewrite(new MessageReaderTests.TrickleStream(message, readSize), output, transform);
        return (result, output.ToArray());
    }

    private static (string Header, string Body) Split(byte[] message)
    {
        string text = Encoding.Latin1.GetString(message);
        int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return (text[..(end + 4)], text[(end + 4)..]);
    }

    private static string HeaderAsCrlf(byte[] message)
    {
        string text = Encoding.Latin1.GetString(ToCrlf(message));
        return text[..(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)];
    }

    [Theory]
    [MemberData(nameof(SendersAndLineEnds))]
    public void IdentityRewriteKeepsTheCmsHeadersAndDecryptability(string sender, bool crlf)
    {
        byte[] input = _fixture.Message(sender);
        if (crlf)
        {
            input = ToCrlf(input);
        }

        byte[]? seen = null;
        var (result, output) = Rewrite(input, cms =>
        {
            seen = cms.ToArray();
            return cms;
        });

        SmimeKind expected = sender.Contains("gcm", StringComparison.Ordinal) ? SmimeKind.AuthEnvelopedData : SmimeKind.EnvelopedData;
        Assert.Equal(expected, result.Classification.Kind);
        Assert.True(result.BodyWasBase64);
        Assert.NotNull(seen);
        Assert.Equal(seen.Length, result.InputCmsLength);

        // The bytes handed to the transform are the sender's CMS: openssl decrypts them with the list key.
        Assert.Equal(_fixture.Plaintext, _fixture.DecryptCms(seen));

        // All header fields untouched (CRLF), body is canonical base64 of the same CMS.
        var (header, body) = Split(output);
        Assert.Equal(HeaderAsCrlf(input), header);
        string[] lines = body.Split("\r\n");
        Assert.Equal(string.Empty, lines[^1]);
        Assert.All(lines[..^1], l => Assert.InRange(l.Length, 1, 76));
        Assert.Equal(seen, SmimeBodyCodecTests.DecodeBase64Lines(Encoding.ASCII.GetBytes(body)));

        // openssl's own S/MIME reader still decrypts the rewritten message.
        Assert.Equal(_fixture.Plaintext, _fixture.DecryptMessage(output));
    }

    [Theory]
    [InlineData("cms-aes128-stream")]
    [InlineData("gpgsm-aes128")]
    public void TheTransformOutputIsWhatGetsEncoded(string sender)
    {
        byte[] input = _fixture.Message(sender);
        byte[]? produced = null;
        var (result, output) = Rewrite(input, cms =>
        {
            // A fake re-wrapper: a different, longer CMS.
            produced = [.. cms.Span, .. Enumerable.Range(0, 5000).Select(i => (byte)i)];
            return produced;
        });
        Assert.Equal(produced!.Length, result.OutputCmsLength);
        Assert.Equal(produced, SmimeBodyCodecTests.DecodeBase64Lines(Encoding.ASCII.GetBytes(Split(output).Body)));
    }

    [Fact]
    public void ReadsTheMessageWhateverTheReadSize()
    {
        byte[] input = ToCrlf(_fixture.Message("smime-stream"));
        byte[] expected = Rewrite(input, c => c).Output;
        foreach (int readSize in new[] { 1, 2, 3, 61, 1000 })
        {
            Assert.Equal(expected, Rewrite(input, c => c, readSize).Output);
        }
    }

    public static TheoryData<string, SmimeKind> HeaderVariants() => new()
    {
        { "Content-Type: APPLICATION/PKCS7-MIME; SMIME-TYPE=ENVELOPED-DATA; NAME=\"SMIME.P7M\"\n", SmimeKind.EnvelopedData },
        { "Content-Type: application/x-pkcs7-mime;\n\tsmime-type=enveloped-data;\n\tname=\"smime.p7m\"\n", SmimeKind.EnvelopedData },
        { "Content-Type: application/pkcs7-mime;\n smime-type*0=envel;\n smime-type*1=oped-data;\n name*=utf-8''smime%2Ep7m\n", SmimeKind.EnvelopedData },
        { "Content-Type: application/pkcs7-mime (comment) ; smime-type=\"enveloped-data\"\n", SmimeKind.EnvelopedData },
        { "Content-Type: application/pkcs7-mime; name*0=\"smime\"; name*1=\".p7m\"\n", SmimeKind.EnvelopedOrAuthEnveloped },
        { "content-type:application/octet-stream; name=smime.p7m\n", SmimeKind.EnvelopedOrAuthEnveloped },
    };

    [Theory]
    [MemberData(nameof(HeaderVariants))]
    public void RecognisesRealMessagesWithUnusualContentTypes(string contentTypeField, SmimeKind kind)
    {
        string original = Encoding.Latin1.GetString(_fixture.Message("cms-default-3des"));
        int start = original.IndexOf("Content-Type:", StringComparison.Ordinal);
        int end = original.IndexOf('\n', start) + 1;
        byte[] input = Encoding.Latin1.GetBytes(original[..start] + contentTypeField + original[end..]);

        var (result, output) = Rewrite(input, c => c);
        Assert.Equal(kind, result.Classification.Kind);
        Assert.Contains(contentTypeField.Replace("\n", "\r\n", StringComparison.Ordinal), Split(output).Header, StringComparison.Ordinal);
        Assert.Equal(_fixture.Plaintext, _fixture.DecryptCms(SmimeBodyCodecTests.DecodeBase64Lines(Encoding.ASCII.GetBytes(Split(output).Body))));
    }

    [Theory]
    [InlineData("Content-Transfer-Encoding: binary\r\n")]
    [InlineData("Content-Transfer-Encoding: 8bit\r\n")]
    [InlineData("")] // no header: the body is sniffed as raw DER
    public void BinaryBodiesStayBinary(string transferEncodingField)
    {
        byte[] der = _fixture.Run("openssl", "cms", "-encrypt", "-binary", "-outform", "DER", "-in", "plain.txt", "list.pem");
        byte[] input =
        [
            .. Encoding.ASCII.GetBytes("Subject: raw\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n" + transferEncodingField + "\r\n"),
            .. der,
        ];
        byte[]? seen = null;
        var (result, output) = Rewrite(input, c =>
        {
            seen = c.ToArray();
            return c;
        });
        Assert.False(result.BodyWasBase64);
        Assert.Equal(der, seen);
        Assert.Equal(input, output);
    }

    [Fact]
    public void Base64WithoutTransferEncodingHeaderIsSniffed()
    {
        string original = Encoding.Latin1.GetString(ToCrlf(_fixture.Message("cms-default-3des")));
        byte[] input = Encoding.Latin1.GetBytes(original.Replace("Content-Transfer-Encoding: base64\r\n", string.Empty, StringComparison.Ordinal));
        var (result, output) = Rewrite(input, c => c);
        Assert.Equal(ContentEncoding.Default, result.Classification.TransferEncoding);
        Assert.True(result.BodyWasBase64);
        Assert.Equal(_fixture.Plaintext, _fixture.DecryptMessage(output));
    }

    [Fact]
    public void SignedAndPlainMessagesAreNotSmimeAndNothingIsWritten()
    {
        byte[] detached = _fixture.Run("openssl", "cms", "-sign", "-in", "plain.txt", "-signer", "list.pem", "-inkey", "list.key");
        byte[] opaque = _fixture.Run("openssl", "cms", "-sign", "-nodetach", "-in", "plain.txt", "-signer", "list.pem", "-inkey", "list.key");
        byte[] plain = Encoding.ASCII.GetBytes("Subject: hi\r\n\r\nhello\r\n");
        foreach ((byte[] message, string reason) in new[] { (detached, "multipart/signed"), (opaque, "smime-type=signed-data"), (plain, "no Content-Type") })
        {
            using var output = new MemoryStream();
            bool called = false;
            var ex = Assert.Throws<MimeFormatException>(() => SmimeBodyRewriter.Rewrite(new MemoryStream(message), output, c =>
            {
                called = true;
                return c;
            }));
            Assert.Equal(MimeErrorReason.NotSmime, ex.Reason);
            Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
            Assert.StartsWith("message is not S/MIME enveloped or authEnveloped data: ", ex.Message, StringComparison.Ordinal);
            Assert.False(called);
            Assert.Equal(0, output.Length);
        }
    }

    [Fact]
    public void CorruptBase64InARealMessageIsAClearError()
    {
        byte[] input = ToCrlf(_fixture.Message("cms-default-3des"));
        var (header, _) = Split(input);
        int at = header.Length + 100;
        input[at] = (byte)'#';
        var ex = Assert.Throws<MimeFormatException>(() => Rewrite(input, c => c));
        Assert.Equal(MimeErrorReason.InvalidBase64Character, ex.Reason);
        Assert.Equal("invalid base64 character '#' (0x23) at body offset 100", ex.Message);
    }

    [Fact]
    public void QuotedPrintableBodiesAreRefusedWithWhatToDo()
    {
        byte[] input = Encoding.ASCII.GetBytes(
            "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=30=80\r\n");
        var ex = Assert.Throws<MimeFormatException>(() => Rewrite(input, c => c));
        Assert.Equal(MimeErrorReason.UnsupportedTransferEncoding, ex.Reason);
        Assert.Contains("Content-Transfer-Encoding base64", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BodiesOverTheLimitAreRefusedWithoutReadingThemWhole()
    {
        byte[] input = ToCrlf(_fixture.Message("cms-default-3des"));
        var ex = Assert.Throws<MimeFormatException>(() =>
            SmimeBodyRewriter.Rewrite(new MemoryStream(input), new MemoryStream(), c => c, new SmimeRewriteOptions { MaxCmsBytes = 100 }));
        Assert.Equal(MimeErrorReason.BodyTooLarge, ex.Reason);
        Assert.Equal("S/MIME body is larger than 100 bytes", ex.Message);
    }

    [Fact]
    public void MultiMegabyteMessagesRoundTripThroughOpenssl()
    {
        var random = new Random(9);
        var sb = new StringBuilder("Content-Type: text/plain\r\n\r\n");
        while (sb.Length < 6 * 1024 * 1024)
        {
            sb.Append(random.NextInt64().ToString("x16", System.Globalization.CultureInfo.InvariantCulture)).Append("\r\n");
        }

        byte[] plain = Encoding.ASCII.GetBytes(sb.ToString());
        File.WriteAllBytes(_fixture.PathOf("big.txt"), plain);
        byte[] message = _fixture.Run("openssl", "cms", "-encrypt", "-binary", "-stream", "-aes-256-cbc", "-in", "big.txt", "list.pem");
        var (result, output) = Rewrite(message, c => c);
        Assert.True(result.InputCmsLength > plain.Length);
        Assert.Equal(plain, _fixture.DecryptMessage(output));
    }
}
