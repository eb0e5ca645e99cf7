using System.IO.Pipelines;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Testing;

namespace MilterSecureList.Protocol.Tests.Session;

/// <summary>
/// A replacement body given as a stream goes out as consecutive REPLBODY frames of at most 65535 bytes, each read
/// into one pipe block (never asking the pipe for more than a 64 KiB block), with no empty frame after the last.
/// </summary>
public class ReplaceBodyStreamTests
{
    private static readonly byte[] s_body = "hello\r\nworld\r\n"u8.ToArray();

    public static TheoryData<int, bool> Lengths()
    {
        var data = new TheoryData<int, bool>();
        foreach (int n in new[] { 0, 1, 65534, 65535, 65536, 131070, 200_001 })
        {
            data.Add(n, true);
            data.Add(n, false);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public async Task ChunksAreFullExceptTheLastAndTheBytesArriveIntact(int length, bool seekable)
    {
        byte[] replacement = Enumerable.Range(0, length).Select(i => (byte)(i * 7)).ToArray();
        SizeHintRecordingPipe? recorder = null;
        await using SessionHarness h = SessionHarness.Start(
            () => new RecordingHandler { OnEom = ctx => { ctx.ReplaceBody(seekable ? new MemoryStream(replacement) : new ForwardOnlyStream(replacement)); return new(MilterVerdict.Continue); } },
            wrapServer: p => recorder = new SizeHintRecordingPipe(p));
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);

        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Equal(replacement, r.ReplacedBody);
        Assert.All(r.BodyChunks, c => Assert.InRange(c.Payload.Length, 0, 65535));
        Assert.All(r.BodyChunks.SkipLast(1), c => Assert.True(c.Payload.Length >= 32 * 1024, $"short frame {c.Payload.Length} before the last"));
        Assert.True(length == 0 || r.BodyChunks[^1].Payload.Length > 0, "an empty frame after the body");
        Assert.InRange(r.BodyChunks.Count, Math.Max(1, (length + 65534) / 65535), Math.Max(1, (length + 32767) / 32768));
        Assert.InRange(recorder!.LargestSizeHint, 0, 64 * 1024);
    }

    [Fact]
    public async Task AStreamThatFailsMidwayTempfailsTheMessageWithWholeFramesOnTheWire()
    {
        await using SessionHarness h = SessionHarness.Start(
            () => new RecordingHandler { OnEom = ctx => { ctx.ReplaceBody(new FailingStream(new byte[300_000], failAt: 150_000)); return new(MilterVerdict.Continue); } });
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);

        // The final reply parses as a reply: every frame before it was complete.
        Assert.Equal((byte)'t', r.Final.Code);
        Assert.True(r.ReplacedBody!.Length < 150_000);
        Assert.Contains(h.Observer.Lines, l => l.Contains("eom-body", StringComparison.Ordinal));

        // And the connection goes on: the next message is answered normally.
        await h.Mta.AbortAsync();
        EndOfMessageResult next = await h.MessageAsync("Q2", "<a@x>", ["<b@x>"], s_body);
        Assert.Equal((byte)'t', next.Final.Code); // the same handler fails the same way, but the framing holds
    }

    private sealed class ForwardOnlyStream(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;
    }

    /// <summary>Reads like a MemoryStream until <paramref name="failAt"/>, then throws as a broken disk would.</summary>
    private sealed class FailingStream(byte[] data, int failAt) : MemoryStream(data, writable: false)
    {
        public override int Read(Span<byte> buffer)
        {
            if (Position >= failAt)
            {
                throw new IOException("simulated read error");
            }

            return base.Read(buffer[..(int)Math.Min(buffer.Length, failAt - Position)]);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));
    }

    /// <summary>Passes everything through and records the largest size asked of the output pipe.</summary>
    private sealed class SizeHintRecordingPipe(IDuplexPipe inner) : IDuplexPipe
    {
        private readonly RecordingWriter _writer = new(inner.Output);

        public PipeReader Input => inner.Input;

        public PipeWriter Output => _writer;

        public int LargestSizeHint => _writer.Largest;

        private sealed class RecordingWriter(PipeWriter inner) : PipeWriter
        {
            public int Largest;

            public override void Advance(int bytes) => inner.Advance(bytes);

            public override void CancelPendingFlush() => inner.CancelPendingFlush();

            public override void Complete(Exception? exception = null) => inner.Complete(exception);

            public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

            public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

            public override Memory<byte> GetMemory(int sizeHint = 0)
            {
                Largest = Math.Max(Largest, sizeHint);
                return inner.GetMemory(sizeHint);
            }

            public override Span<byte> GetSpan(int sizeHint = 0)
            {
                Largest = Math.Max(Largest, sizeHint);
                return inner.GetSpan(sizeHint);
            }
        }
    }
}
