using System.Buffers;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Wire;
using static MilterSecureList.Protocol.Tests.Wire.MilterFrameReaderTests;

namespace MilterSecureList.Protocol.Tests.Wire;

public class MilterResponseEncodingTests
{
    private static byte[] Encode(Action<IBufferWriter<byte>> write)
    {
        var w = new ArrayBufferWriter<byte>();
        write(w);
        return w.WrittenSpan.ToArray();
    }

    public static TheoryData<string, string> Verdicts => new()
    {
        { "continue", "00000001 63" },
        { "accept", "00000001 61" },
        { "reject", "00000001 72" },
        { "tempfail", "00000001 74" },
        { "discard", "00000001 64" },
        { "shutdown", "00000001 34" },
    };

    [Theory]
    [MemberData(nameof(Verdicts))]
    public void EncodesPayloadFreeVerdicts(string name, string hex)
    {
        MilterVerdict v = name switch
        {
            "continue" => MilterVerdict.Continue,
            "accept" => MilterVerdict.Accept,
            "reject" => MilterVerdict.Reject,
            "tempfail" => MilterVerdict.Tempfail,
            "discard" => MilterVerdict.Discard,
            _ => MilterVerdict.Shutdown,
        };
        Assert.Equal(Hex(hex), Encode(v.WriteTo));
    }

    [Fact]
    public void EncodesReplyCodeWithNulAndDoubledPercent() =>
        Assert.Equal(Frame('y', "550 5.7.1 100%% sure\0"), Encode(MilterVerdict.Reply(550, "5.7.1", "100% sure").WriteTo));

    [Fact]
    public void EncodesReplyCodeWithoutEnhancedStatus() =>
        Assert.Equal(Frame('y', "451 later\0"), Encode(MilterVerdict.Reply(451, null, "later").WriteTo));

    [Theory]
    [InlineData(550, "4.7.1", "class mismatch")]
    [InlineData(250, null, "not 4xx/5xx")]
    [InlineData(550, "5.7", "short status")]
    [InlineData(550, "5.7.1", "two\r\nlines")]
    [InlineData(550, "x.7.1", "bad class")]
    public void RejectsInvalidReplyCodes(int code, string? status, string text) =>
        Assert.ThrowsAny<ArgumentException>(() => MilterVerdict.Reply(code, status, text));

    [Fact]
    public void EncodesProgressAndSkip()
    {
        Assert.Equal(Hex("00000001 70"), Encode(MilterResponseWriter.WriteProgress));
        Assert.Equal(Hex("00000001 73"), Encode(MilterResponseWriter.WriteSkip));
    }

    [Fact]
    public void EncodesModifications()
    {
        Assert.Equal(Frame('h', "X-A\0v\0"), Encode(new AddHeaderModification("X-A", "v").WriteTo));
        Assert.Equal([.. Hex("0000000B 69 00000002"), .. "X-A\0v\0"u8], Encode(new InsertHeaderModification(2, "X-A", "v").WriteTo));
        Assert.Equal([.. Hex("0000000A 6D 00000001"), .. "X-A\0\0"u8], Encode(new ChangeHeaderModification(1, "X-A", "").WriteTo));
        Assert.Equal(Frame('+', "<a@b>\0"), Encode(new AddRecipientModification("<a@b>", null).WriteTo));
        Assert.Equal(Frame('2', "<a@b>\0NOTIFY=NEVER\0"), Encode(new AddRecipientModification("<a@b>", "NOTIFY=NEVER").WriteTo));
        Assert.Equal(Frame('-', "<a@b>\0"), Encode(new DeleteRecipientModification("<a@b>").WriteTo));
        Assert.Equal(Frame('e', "<s@b>\0"), Encode(new ChangeFromModification("<s@b>", null).WriteTo));
        Assert.Equal(Frame('e', "<s@b>\0RET=HDRS\0"), Encode(new ChangeFromModification("<s@b>", "RET=HDRS").WriteTo));
        Assert.Equal(Frame('q', "held\0"), Encode(new QuarantineModification("held").WriteTo));
    }

    [Fact]
    public void EncodesOptionNegotiationWithMacroLists()
    {
        var macros = new Dictionary<MacroStage, string> { [MacroStage.EndOfMessage] = "i" };
        byte[] bytes = Encode(w => MilterResponseWriter.WriteOptionNegotiation(w, 6, MilterActions.ChangeBody | MilterActions.SetSymbolList, MilterProtocolOptions.NoConnect, macros));
        Assert.Equal([.. Hex("00000013 4F 00000006 00000102 00000001 00000005"), .. "i\0"u8], bytes);
    }

    [Theory]
    [InlineData(0, new[] { 0 })]
    [InlineData(1, new[] { 1 })]
    [InlineData(65535, new[] { 65535 })]
    [InlineData(65536, new[] { 65535, 1 })]
    [InlineData(200000, new[] { 65535, 65535, 65535, 3395 })]
    public void ReplaceBodyIsChunkedAt65535(int size, int[] chunks)
    {
        byte[] body = Enumerable.Range(0, size).Select(i => (byte)i).ToArray();
        var buffer = new ReadOnlySequence<byte>(Encode(w => MilterResponseWriter.WriteReplaceBody(w, body)));
        var got = new List<int>();
        var joined = new List<byte>();
        while (MilterFrameReader.TryReadFrame(ref buffer, 1 << 20, out MilterFrame f))
        {
            Assert.Equal((byte)'b', f.Code);
            got.Add((int)f.Payload.Length);
            joined.AddRange(f.Payload.ToArray());
        }

        Assert.True(buffer.IsEmpty);
        Assert.Equal(chunks, got);
        Assert.Equal(body, joined);
    }
}
