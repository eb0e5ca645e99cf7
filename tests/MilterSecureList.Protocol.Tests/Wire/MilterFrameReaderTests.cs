using System.Buffers;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Protocol.Tests.Wire;

public class MilterFrameReaderTests
{
    /// <summary>Raw frames for every MTA command, as Postfix 3.7 writes them (docs/protocol.md §3).</summary>
    public static TheoryData<string, byte[]> Frames => new()
    {
        { "optneg", Hex("0000000D 4F 00000006 000001FF 001FFFFF") },
        { "macro", Frame('D', "Cj\0mx.test\0{daemon_name}\0mx.test\0") },
        { "macro-empty", Frame('D', "H") },
        { "connect", RawFrame('C', [.. "localhost\0"u8, (byte)'4', 0x96, 0xC2, .. "127.0.0.1\0"u8]) },
        { "connect-unknown", Frame('C', "host\0U") },
        { "helo", Frame('H', "client.example\0") },
        { "mail", Frame('M', "<sender@example.com>\0BODY=8BITMIME\0") },
        { "rcpt", Frame('R', "<list@example.com>\0") },
        { "data", Frame('T', "") },
        { "header", Frame('L', "Subject\0first\n\tcontinuation\0") },
        { "eoh", Frame('N', "") },
        { "body", Frame('B', "line one\r\n\0nul inside\r\n") },
        { "eom", Frame('E', "") },
        { "abort", Frame('A', "") },
        { "quit", Frame('Q', "") },
        { "quit-nc", Frame('K', "") },
        { "unknown", Frame('U', "XYZZY arg\0") },
    };

    [Theory]
    [MemberData(nameof(Frames))]
    public void TryReadFrameReadsWholeFrame(string name, byte[] frame)
    {
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.True(MilterFrameReader.TryReadFrame(ref buffer, MilterLimits.DefaultMaxPayload, out MilterFrame f), name);
        Assert.True(buffer.IsEmpty);
        Assert.Equal(frame[4], f.Code);
        Assert.Equal(frame[5..], f.Payload.ToArray());
    }

    [Theory]
    [MemberData(nameof(Frames))]
    public void TryReadFrameReturnsFalseForEveryPrefix(string name, byte[] frame)
    {
        for (int n = 0; n < frame.Length; n++)
        {
            var buffer = new ReadOnlySequence<byte>(frame, 0, n);
            ReadOnlySequence<byte> before = buffer;
            Assert.False(MilterFrameReader.TryReadFrame(ref buffer, MilterLimits.DefaultMaxPayload, out _), $"{name} prefix {n}");
            Assert.Equal(before.Start, buffer.Start);
            Assert.Equal(before.End, buffer.End);
        }
    }

    [Theory]
    [MemberData(nameof(Frames))]
    public void TryReadFrameReadsFrameSplitAtEveryOffset(string name, byte[] frame)
    {
        for (int cut = 1; cut < frame.Length; cut++)
        {
            ReadOnlySequence<byte> buffer = SegmentedSequence.Create(frame, cut);
            Assert.True(MilterFrameReader.TryReadFrame(ref buffer, MilterLimits.DefaultMaxPayload, out MilterFrame f), $"{name} cut {cut}");
            Assert.Equal(frame[5..], f.Payload.ToArray());
            Assert.True(buffer.IsEmpty);
        }

        ReadOnlySequence<byte> bytewise = SegmentedSequence.OneBytePerSegment(frame);
        Assert.True(MilterFrameReader.TryReadFrame(ref bytewise, MilterLimits.DefaultMaxPayload, out MilterFrame g));
        Assert.Equal(frame[4], g.Code);
        Assert.Equal(frame[5..], g.Payload.ToArray());
    }

    [Fact]
    public void TryReadFrameReadsBackToBackFramesOneAtATime()
    {
        byte[] bytes = [.. Frame('D', "M"), .. Frame('M', "<a@b>\0"), .. Frame('A', "")];
        var buffer = new ReadOnlySequence<byte>(bytes);
        var codes = new List<char>();
        while (MilterFrameReader.TryReadFrame(ref buffer, MilterLimits.DefaultMaxPayload, out MilterFrame f))
        {
            codes.Add((char)f.Code);
        }

        Assert.Equal(['D', 'M', 'A'], codes);
    }

    [Fact]
    public void TryReadFrameThrowsZeroLength()
    {
        var buffer = new ReadOnlySequence<byte>(Hex("00000000"));
        MilterProtocolException ex = Assert.Throws<MilterProtocolException>(() => MilterFrameReader.TryReadFrame(ref buffer, 65535, out _));
        Assert.Equal(MilterViolation.ZeroLength, ex.Reason);
    }

    [Theory]
    [InlineData("FFFFFFFF")]
    [InlineData("7FFFFFFF")]
    [InlineData("00100002")] // 1 MiB + 1 byte of payload
    public void TryReadFrameRejectsAbsurdLengthBeforeThePayloadArrives(string header)
    {
        // Only the 4 length bytes are present: the limit must be checked without waiting for (or buffering) the payload.
        var buffer = new ReadOnlySequence<byte>(Hex(header));
        MilterProtocolException ex = Assert.Throws<MilterProtocolException>(() => MilterFrameReader.TryReadFrame(ref buffer, MilterLimits.DefaultMaxPayload, out _));
        Assert.Equal(MilterViolation.FrameTooLarge, ex.Reason);
    }

    [Fact]
    public void TryReadFrameAcceptsExactlyTheLimit()
    {
        byte[] frame = [.. Hex("00010000 42"), .. new byte[65535]];
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.True(MilterFrameReader.TryReadFrame(ref buffer, 65535, out MilterFrame f));
        Assert.Equal(65535, f.Payload.Length);

        byte[] over = Hex("00010001 42");
        var overBuffer = new ReadOnlySequence<byte>(over);
        Assert.Equal(MilterViolation.FrameTooLarge, Assert.Throws<MilterProtocolException>(() => MilterFrameReader.TryReadFrame(ref overBuffer, 65535, out _)).Reason);
    }

    internal static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal));

    internal static byte[] Frame(char code, string payload) => RawFrame(code, System.Text.Encoding.UTF8.GetBytes(payload));

    internal static byte[] RawFrame(char code, byte[] p)
    {
        byte[] f = new byte[5 + p.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f, (uint)p.Length + 1);
        f[4] = (byte)code;
        p.CopyTo(f, 5);
        return f;
    }
}
