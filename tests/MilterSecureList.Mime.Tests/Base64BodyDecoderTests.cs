using System.Buffers;
using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace MilterSecureList.Mime.Tests;

public class Base64BodyDecoderTests
{
    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    // The reference encoder: 76-character lines joined with CRLF (System.Convert's MIME mode).
    private static byte[] MimeBase64(byte[] data, string newline = "\r\n") =>
        Encoding.ASCII.GetBytes(Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", newline, StringComparison.Ordinal) + newline);

    private static byte[] DecodeChunks(IEnumerable<byte[]> chunks)
    {
        var output = new ArrayBufferWriter<byte>();
        var decoder = new Base64BodyDecoder();
        foreach (byte[] chunk in chunks)
        {
            decoder.Decode(chunk, output);
        }

        decoder.Complete(output);
        Assert.Equal(output.WrittenCount, decoder.BytesWritten);
        return output.WrittenSpan.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(57)]
    [InlineData(58)]
    [InlineData(1000)]
    public void DecodesAtEverySplitPoint(int length)
    {
        byte[] data = RandomBytes(length, length);
        foreach (string newline in new[] { "\r\n", "\n" })
        {
            byte[] encoded = MimeBase64(data, newline);
            for (int split = 0; split <= encoded.Length; split++)
            {
                byte[] decoded = DecodeChunks([encoded[..split], encoded[split..]]);
                Assert.Equal(data, decoded);
            }
        }
    }

    [Fact]
    public void DecodesOneByteAtATime()
    {
        byte[] data = RandomBytes(777, 7);
        byte[] encoded = MimeBase64(data);
        Assert.Equal(data, DecodeChunks(encoded.Select(b => new[] { b })));
    }

    [Fact]
    public void DecodesMultiMegabyteStreamsAcrossSliceBoundaries()
    {
        byte[] data = RandomBytes((3 * 1024 * 1024) + 17, 3);
        using var input = new MemoryStream(MimeBase64(data));
        using var output = new MemoryStream();
        long written = Base64BodyDecoder.Decode(input, output);
        Assert.Equal(data.Length, written);
        Assert.Equal(data, output.ToArray());
    }

    [Theory]
    [InlineData("QUJD", "ABC")]
    [InlineData("QUI=", "AB")]
    [InlineData("QQ==", "A")]
    [InlineData(" Q U\tJ D \r\n", "ABC")]
    [InlineData("QQ=\r\n=\r\n\r\n", "A")]
    [InlineData("QUJD\nREVG\n", "ABCDEF")]
    [InlineData("", "")]
    [InlineData("\r\n\r\n", "")]
    public void ToleratesWhiteSpaceAndPadding(string body, string expected)
    {
        Assert.Equal(expected, Encoding.ASCII.GetString(Base64BodyDecoder.Decode(Encoding.ASCII.GetBytes(body))));
    }

    [Theory]
    [InlineData("QUJD!REVG", MimeErrorReason.InvalidBase64Character, "'!' (0x21) at body offset 4")]
    [InlineData("QUJD\r\nRE-G", MimeErrorReason.InvalidBase64Character, "'-' (0x2D) at body offset 8")]
    [InlineData("QUJD\0", MimeErrorReason.InvalidBase64Character, "0x00 at body offset 4")]
    [InlineData("=QUJ", MimeErrorReason.InvalidBase64Padding, "misplaced base64 padding '=' at body offset 0")]
    [InlineData("QUJD=", MimeErrorReason.InvalidBase64Padding, "misplaced")]
    [InlineData("Q===", MimeErrorReason.InvalidBase64Padding, "misplaced")]
    [InlineData("QQ===", MimeErrorReason.InvalidBase64Padding, "too much base64 padding at body offset 4")]
    [InlineData("QQ==QUJD", MimeErrorReason.InvalidBase64Padding, "data after base64 padding at body offset 4")]
    [InlineData("QQ=", MimeErrorReason.InvalidBase64Padding, "ends with 1 '=' where 2 are needed")]
    [InlineData("QUJDR", MimeErrorReason.TruncatedBase64, "1 character(s) left over")]
    [InlineData("QQ", MimeErrorReason.TruncatedBase64, "2 character(s) left over")]
    public void RejectsBadBase64WithAClearMessage(string body, MimeErrorReason reason, string messagePart)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(body);
        // The same error whichever way the body is split.
        for (int split = 0; split <= bytes.Length; split++)
        {
            var ex = Assert.Throws<MimeFormatException>(() => DecodeChunks([bytes[..split], bytes[split..]]));
            Assert.Equal(reason, ex.Reason);
            Assert.Contains(messagePart, ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', ex.Message);
        }
    }

    [Fact]
    public void ReportsTheOffsetOfABadCharacterDeepInALargeBody()
    {
        byte[] encoded = MimeBase64(RandomBytes(100_000, 1));
        int at = 70_001;
        while (encoded[at] is (byte)'\r' or (byte)'\n')
        {
            at++;
        }

        encoded[at] = (byte)'*';
        var ex = Assert.Throws<MimeFormatException>(() => Base64BodyDecoder.Decode(new MemoryStream(encoded), new MemoryStream()));
        Assert.Equal(MimeErrorReason.InvalidBase64Character, ex.Reason);
        Assert.Contains($"at body offset {at}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CannotBeUsedAfterComplete()
    {
        var decoder = new Base64BodyDecoder();
        var output = new ArrayBufferWriter<byte>();
        decoder.Complete(output);
        Assert.Throws<ObjectDisposedException>(() => decoder.Decode("QUJD"u8, output));
    }

    [Fact]
    public void DecodesAnyChunkingOfAnyLineLayout_Property()
    {
        Gen<(byte[] Data, int LineLength, bool Lf, int[] Cuts)> gen =
            from data in ArbMap.Default.GeneratorFor<byte[]>()
            from lineQuads in Gen.Choose(1, 40)
            from lf in ArbMap.Default.GeneratorFor<bool>()
            from cuts in Gen.Choose(0, 10_000).ArrayOf()
            select (data, lineQuads * 4, lf, cuts);
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(300),
            Prop.ForAll(Arb.From(gen), t =>
            {
                string b64 = Convert.ToBase64String(t.Data);
                string newline = t.Lf ? "\n" : "\r\n";
                var sb = new StringBuilder();
                for (int i = 0; i < b64.Length; i += t.LineLength)
                {
                    sb.Append(b64.AsSpan(i, Math.Min(t.LineLength, b64.Length - i))).Append(newline);
                }

                byte[] encoded = Encoding.ASCII.GetBytes(sb.ToString());
                int[] cuts = t.Cuts.Select(c => c % (encoded.Length + 1)).Order().Distinct().ToArray();
                var chunks = new List<byte[]>();
                int previous = 0;
                foreach (int cut in cuts.Append(encoded.Length))
                {
                    chunks.Add(encoded[previous..cut]);
                    previous = cut;
                }

                return DecodeChunks(chunks).AsSpan().SequenceEqual(t.Data);
            }));
    }

    [Fact]
    public void NeverThrowsAnythingButMimeFormatException_Property()
    {
        Gen<byte[]> gen = Gen.Elements("QUJD=\r\n \t!-_\0\u00ff".Select(c => (byte)c).ToArray()).ArrayOf();
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(2000),
            Prop.ForAll(Arb.From(gen), body =>
            {
                try
                {
                    _ = Base64BodyDecoder.Decode(body);
                }
                catch (MimeFormatException)
                {
                }

                return true;
            }));
    }
}
