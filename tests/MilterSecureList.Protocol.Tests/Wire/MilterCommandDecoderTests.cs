using System.Buffers;
using MilterSecureList.Protocol.Commands;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;
using static MilterSecureList.Protocol.Tests.Wire.MilterFrameReaderTests;

namespace MilterSecureList.Protocol.Tests.Wire;

public class MilterCommandDecoderTests
{
    private static MilterCommand DecodeEverySplit(byte[] frame)
    {
        MilterCommand? first = null;
        for (int cut = 0; cut < frame.Length; cut++)
        {
            ReadOnlySequence<byte> buffer = cut == 0 ? new ReadOnlySequence<byte>(frame) : SegmentedSequence.Create(frame, cut);
            Assert.True(MilterFrameReader.TryReadFrame(ref buffer, MilterLimits.DefaultMaxPayload, out MilterFrame f));
            MilterCommand c = MilterCommandDecoder.Decode(f);
            if (first is null)
            {
                first = c;
            }
            else if (c is not BodyCommand and not EndOfMessageCommand and not MacroCommand and not MailCommand and not RecipientCommand and not HeaderCommand)
            {
                Assert.Equal(first, c); // records compare by value
            }
        }

        return first!;
    }

    [Fact]
    public void DecodesOptionNegotiation()
    {
        var c = Assert.IsType<OptionNegotiationCommand>(DecodeEverySplit(Hex("0000000D 4F 00000006 000001FF 001FFFFF")));
        Assert.Equal(6u, c.Version);
        Assert.Equal(MilterActions.All, c.Actions);
        Assert.Equal((MilterProtocolOptions)0x1FFFFF, c.Protocol);
    }

    [Fact]
    public void DecodesOptionNegotiationWithLongerPayload() =>
        Assert.Equal(2u, Assert.IsType<OptionNegotiationCommand>(DecodeEverySplit(Hex("00000011 4F 00000002 0000000F 0000007F DEADBEEF"))).Version);

    [Fact]
    public void DecodesMacroPairs()
    {
        var c = Assert.IsType<MacroCommand>(DecodeEverySplit(Frame('D', "C" + "j\0mx.test\0{daemon_name}\0mx\0")));
        Assert.Equal(MilterCommandCode.Connect, c.ForCommand);
        Assert.Equal([new("j", "mx.test"), new("{daemon_name}", "mx")], c.Macros);
    }

    [Theory]
    [InlineData("H")]                 // no pairs at all (Postfix sends these)
    [InlineData("Ei\0")]              // odd trailing name
    [InlineData("Ei\0ABC")]           // unterminated value
    public void DecodesMacroLoosely(string payload) =>
        Assert.Empty(Assert.IsType<MacroCommand>(DecodeEverySplit(Frame('D', payload))).Macros);

    [Fact]
    public void DecodesConnectInet()
    {
        var c = Assert.IsType<ConnectCommand>(DecodeEverySplit(RawFrame('C', [.. "localhost\0"u8, (byte)'4', 0x96, 0xC2, .. "127.0.0.1\0"u8])));
        Assert.Equal(new ConnectCommand("localhost", ConnectFamily.Inet, 0x96C2, "127.0.0.1"), c);
    }

    [Fact]
    public void DecodesConnectUnknownFamilyWithoutPortAndAddress() =>
        Assert.Equal(new ConnectCommand("host", ConnectFamily.Unknown, 0, ""), DecodeEverySplit(Frame('C', "host\0U")));

    [Fact]
    public void DecodesHelo() => Assert.Equal(new HeloCommand("client.example"), DecodeEverySplit(Frame('H', "client.example\0")));

    [Fact]
    public void DecodesMailWithEsmtpArgs()
    {
        var c = Assert.IsType<MailCommand>(DecodeEverySplit(Frame('M', "<s@example.com>\0BODY=8BITMIME\0SIZE=10\0")));
        Assert.Equal("<s@example.com>", c.Sender);
        Assert.Equal(["BODY=8BITMIME", "SIZE=10"], c.EsmtpArgs);
    }

    [Fact]
    public void DecodesNullSender() => Assert.Equal("<>", Assert.IsType<MailCommand>(DecodeEverySplit(Frame('M', "<>\0"))).Sender);

    [Fact]
    public void DecodesRecipient()
    {
        var c = Assert.IsType<RecipientCommand>(DecodeEverySplit(Frame('R', "<l@example.com>\0NOTIFY=NEVER\0")));
        Assert.Equal("<l@example.com>", c.Recipient);
        Assert.Equal(["NOTIFY=NEVER"], c.EsmtpArgs);
    }

    [Fact]
    public void DecodesHeaderKeepingRawBytes()
    {
        byte[] frame = RawFrame('L', [.. "Subject\0"u8, 0xE9, .. "t\n\tx\0"u8]);
        var c = Assert.IsType<HeaderCommand>(DecodeEverySplit(frame));
        Assert.Equal("Subject", c.Name);
        Assert.Equal(new byte[] { 0xE9, (byte)'t', (byte)'\n', (byte)'\t', (byte)'x' }, c.RawValue);
    }

    [Theory]
    [InlineData('T', typeof(DataCommand))]
    [InlineData('N', typeof(EndOfHeadersCommand))]
    [InlineData('A', typeof(AbortCommand))]
    [InlineData('Q', typeof(QuitCommand))]
    [InlineData('K', typeof(QuitNewConnectionCommand))]
    public void DecodesEmptyCommands(char code, Type type) => Assert.IsType(type, DecodeEverySplit(Frame(code, "")));

    [Fact]
    public void DecodesBodyAsRawBytesWithNul()
    {
        byte[] frame = RawFrame('B', [(byte)'a', 0, (byte)'b', 13, 10]);
        Assert.Equal(new byte[] { (byte)'a', 0, (byte)'b', 13, 10 }, Assert.IsType<BodyCommand>(DecodeEverySplit(frame)).Chunk.ToArray());
    }

    [Fact]
    public void DecodesEndOfMessageWithAndWithoutData()
    {
        Assert.True(Assert.IsType<EndOfMessageCommand>(DecodeEverySplit(Frame('E', ""))).LastChunk.IsEmpty);
        Assert.Equal("tail"u8.ToArray(), Assert.IsType<EndOfMessageCommand>(DecodeEverySplit(Frame('E', "tail"))).LastChunk.ToArray());
    }

    [Fact]
    public void DecodesUnknown() => Assert.Equal(new UnknownCommand("XYZZY a"), DecodeEverySplit(Frame('U', "XYZZY a\0")));

    [Theory]
    [InlineData('O', "\0\0\0\u0006")]       // OPTNEG too short
    [InlineData('C', "host")]               // hostname without NUL
    [InlineData('C', "host\0")]             // no family
    [InlineData('C', "host\u00004\u0001")]  // port cut
    [InlineData('C', "host\u00004\u0001\u0002addr")] // address without NUL
    [InlineData('H', "helo")]
    [InlineData('M', "")]
    [InlineData('M', "<a@b>")]
    [InlineData('R', "<a@b>\0ARG")]
    [InlineData('L', "Subject")]
    [InlineData('L', "Subject\0value")]
    [InlineData('U', "cmd")]
    [InlineData('D', "")]
    public void RejectsMalformedPayload(char code, string payload)
    {
        var buffer = new ReadOnlySequence<byte>(Frame(code, payload));
        Assert.True(MilterFrameReader.TryReadFrame(ref buffer, 65535, out MilterFrame f));
        try
        {
            MilterCommandDecoder.Decode(f);
            Assert.Fail("expected a violation");
        }
        catch (MilterProtocolException ex)
        {
            Assert.Equal(MilterViolation.MalformedPayload, ex.Reason);
        }
    }

    [Theory]
    [InlineData('X')]
    [InlineData('c')]
    [InlineData('\0')]
    public void RejectsUnknownCommandCode(char code)
    {
        var buffer = new ReadOnlySequence<byte>(Frame(code, ""));
        Assert.True(MilterFrameReader.TryReadFrame(ref buffer, 65535, out MilterFrame f));
        try
        {
            MilterCommandDecoder.Decode(f);
            Assert.Fail("expected a violation");
        }
        catch (MilterProtocolException ex)
        {
            Assert.Equal(MilterViolation.UnknownCommand, ex.Reason);
        }
    }
}
