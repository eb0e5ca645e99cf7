using System.Text;
using FsCheck;
using FsCheck.Fluent;
using MimeKit;

namespace MilterSecureList.Mime.Tests;

public class MessageReaderTests
{
    private const string CrlfMessage =
        "Received: from a by b;\r\n\tSat, 21 Nov 2026 16:00:00 +0000\r\n" +
        "From: Alice <alice@example.org>\r\n" +
        "Subject: =?utf-8?q?caf=C3=A9?= and  two  spaces \r\n" +
        "X-Odd :value with space before colon\r\n" +
        "Content-Type: application/pkcs7-mime;\r\n smime-type=enveloped-data;\r\n\tname=\"smime.p7m\"\r\n" +
        "\r\n" +
        "body line 1\r\n\r\nbody line 3\r\n";

    private static RawMessage Read(string text, int readSize = int.MaxValue) =>
        MessageReader.Read(new TrickleStream(Encoding.UTF8.GetBytes(text), readSize));

    private static string ReadAll(Stream s)
    {
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static string Rewrite(RawMessage message, params MimeHeader[] added)
    {
        using var output = new MemoryStream();
        MessageWriter.WriteHeader(message.Header, added, output);
        message.Body.CopyTo(output);
        return Encoding.UTF8.GetString(output.ToArray());
    }

    private static string Value(RawMessage message, string name) => message.Header.GetRawValue(name)!;

    [Fact]
    public void SplitsFieldsKeepsRawBytesAndUnfoldsValues()
    {
        using RawMessage message = Read(CrlfMessage);
        Assert.Equal(["Received", "From", "Subject", "X-Odd", "Content-Type"], message.Header.Select(f => f.Field));
        Assert.Equal(" application/pkcs7-mime;\r\n smime-type=enveloped-data;\r\n\tname=\"smime.p7m\"\r\n",
            Encoding.ASCII.GetString(message.Header[4].RawValue));
        Assert.Equal("application/pkcs7-mime; smime-type=enveloped-data;\tname=\"smime.p7m\"", Value(message, "content-type"));
        Assert.Equal("from a by b;\tSat, 21 Nov 2026 16:00:00 +0000", Value(message, "RECEIVED"));
        // As a milter sees it: encoded words stay encoded.
        Assert.Equal("=?utf-8?q?caf=C3=A9?= and  two  spaces", Value(message, "Subject"));
        Assert.Equal("value with space before colon", Value(message, "X-Odd"));
        Assert.Null(message.Header.GetRawValue("Cc"));
        Assert.Equal("body line 1\r\n\r\nbody line 3\r\n", ReadAll(message.Body));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(64)]
    public void CrlfMessagesAreWrittenBackByteForByteWhateverTheReadSize(int readSize)
    {
        using RawMessage message = Read(CrlfMessage, readSize);
        Assert.Equal(CrlfMessage, Rewrite(message));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(4096)]
    public void LfOnlyMessagesAreReadAndWrittenWithCrlf(int readSize)
    {
        string lf = CrlfMessage.Replace("\r\n", "\n", StringComparison.Ordinal);
        using RawMessage message = Read(lf, readSize);
        Assert.Equal(5, message.Header.Count);
        Assert.Equal("application/pkcs7-mime; smime-type=enveloped-data;\tname=\"smime.p7m\"", Value(message, "Content-Type"));
        var output = new MemoryStream();
        MessageWriter.WriteHeader(message.Header, output);
        string header = Encoding.UTF8.GetString(output.ToArray());
        Assert.Equal(CrlfMessage[..(CrlfMessage.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)], header);
        Assert.Equal("body line 1\n\nbody line 3\n", ReadAll(message.Body)); // the body is the caller's, untouched
    }

    [Fact]
    public void AddedFieldsFollowTheOriginalOnesWithTheirValuesAsGiven()
    {
        using RawMessage message = Read("Subject: x\r\n\r\nbody\r\n");
        Assert.Equal(
            "Subject: x\r\nList-Id: <crypto.lists.example.org>\r\nX-SecureList: 3 members re-keyed\r\n\r\nbody\r\n",
            Rewrite(message, new MimeHeader("List-Id", "<crypto.lists.example.org>"), new MimeHeader("X-SecureList", "3 members re-keyed")));
    }

    [Fact]
    public void AMessageWithoutBodyIsAllHeader()
    {
        using RawMessage message = Read("Subject: x\r\nFrom: y");
        Assert.Equal(2, message.Header.Count);
        Assert.Equal("y", Value(message, "From"));
        Assert.Equal(string.Empty, ReadAll(message.Body));
        Assert.Equal("Subject: x\r\nFrom: y\r\n\r\n", Rewrite(Read("Subject: x\r\nFrom: y")));
    }

    [Fact]
    public void AnEmptyFirstLineMeansNoHeaderFields()
    {
        using RawMessage message = Read("\r\nFrom: not a header\r\n");
        Assert.Empty(message.Header);
        Assert.Equal("From: not a header\r\n", ReadAll(message.Body));
    }

    [Theory]
    [InlineData("Subject: x\r\n\tcontinued\r\nno colon here\r\nTo: y\r\n\r\nbody\r\n")]
    [InlineData("Subject: x\r\n: no name\r\n\r\nbody\r\n")]
    [InlineData("Subject: x\r\nX-Bad\u00ff: v\r\n\r\nbody\r\n")]
    public void LinesThatAreNotFieldsAreWrittenBackAsTheyWere(string text)
    {
        // Not the reader's business to refuse: the filter decides from Content-Type alone, and the rest goes out unchanged.
        using RawMessage message = Read(text);
        Assert.Equal(text, Rewrite(message));
    }

    [Theory]
    [InlineData("From alice@example.org Sat Nov 21 16:00:00 2026\nSubject: x\n\n")]
    [InlineData("X-Bad\u00ff: v\r\nSubject: x\r\n\r\nbody\r\n")]
    [InlineData("\u0000\u0001\u0002binary")]
    public void InputThatDoesNotStartWithAFieldIsAOneLineError(string text)
    {
        var ex = Assert.Throws<MimeFormatException>(() => Read(text));
        Assert.Equal(MimeErrorReason.MalformedHeader, ex.Reason);
        Assert.Equal("the message does not start with a header field (Name: value)", ex.Message);
    }

    [Fact]
    public void KeepsEightBitHeaderBytesUntouched()
    {
        byte[] input = [.. "Subject: "u8, 0xE9, 0xFF, .. "\r\n\r\nx"u8];
        using RawMessage message = MessageReader.Read(new MemoryStream(input));
        var output = new MemoryStream();
        MessageWriter.WriteHeader(message.Header, output);
        message.Body.CopyTo(output);
        Assert.Equal(input, output.ToArray());
    }

    [Fact]
    public void AnUnseekableInputIsReadToo()
    {
        using RawMessage message = MessageReader.Read(new UnseekableStream(Encoding.ASCII.GetBytes(CrlfMessage)));
        Assert.Equal(CrlfMessage, Rewrite(message));
    }

    [Fact]
    public void TheBodyIsAViewThatStartsAtTheBody()
    {
        using RawMessage message = Read(CrlfMessage);
        _ = ReadAll(message.Body);
        message.Body.Position = 0;
        Assert.Equal("body line 1\r\n\r\nbody line 3\r\n", ReadAll(message.Body));
        Assert.Equal("body line 1\r\n\r\nbody line 3\r\n".Length, message.Body.Length);
    }

    [Fact]
    public void AnyFoldedHeaderBlockRoundTripsWithCrlf_Property()
    {
        Gen<string> word = Gen.Elements("abcXYZ09;=\"()<>@.-_ ".ToCharArray()).NonEmptyListOf().Select(l => new string(l.ToArray()).Trim()).Where(w => w.Length > 0);
        Gen<(string Name, string[] Parts)> field =
            from name in Gen.Elements("Subject", "Content-Type", "X-Long-Header", "To", "Received")
            from parts in word.NonEmptyListOf().Select(l => l.ToArray())
            select (name, parts);
        Gen<(List<(string Name, string[] Parts)> Fields, bool Lf, int ReadSize)> gen =
            from fields in field.ListOf().Select(l => l.ToList())
            from lf in ArbMap.Default.GeneratorFor<bool>()
            from readSize in Gen.Choose(1, 40)
            select (fields, lf, readSize);
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(300),
            Prop.ForAll(Arb.From(gen), t =>
            {
                string nl = t.Lf ? "\n" : "\r\n";
                // Each part after the first goes on a continuation line (folding, RFC 5322 §2.2.3).
                string block = string.Concat(t.Fields.Select(f => f.Name + ": " + string.Join(nl + "\t", f.Parts) + nl)) + nl;
                string text = block + "body\r\n";
                using RawMessage message = Read(text, t.ReadSize);
                List<MimeHeader> fields = message.Header.ToMimeHeaders().ToList();
                Assert.Equal(t.Fields.Count, fields.Count);
                for (int i = 0; i < t.Fields.Count; i++)
                {
                    Assert.Equal(t.Fields[i].Name, fields[i].Name);
                    Assert.Equal(string.Join("\t", t.Fields[i].Parts), fields[i].Value);
                }

                return Rewrite(message) == block.Replace("\r\n", "\n", StringComparison.Ordinal).Replace("\n", "\r\n", StringComparison.Ordinal) + "body\r\n";
            }));
    }

    /// <summary>Hands out at most a fixed number of bytes per read, like a socket.</summary>
    internal sealed class TrickleStream(byte[] data, int readSize) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, readSize));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, readSize)]);
    }

    /// <summary>Standard input: no seeking, no length.</summary>
    internal sealed class UnseekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
