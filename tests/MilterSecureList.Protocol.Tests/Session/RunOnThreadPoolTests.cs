using System.Buffers.Binary;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Testing;

namespace MilterSecureList.Protocol.Tests.Session;

/// <summary>
/// A handler that declares <see cref="MilterHandlerCapabilities.RunOnThreadPool"/> never runs on the thread that
/// reads the connection: in the daemon that thread is a socket event thread serving every other connection too.
/// </summary>
public class RunOnThreadPoolTests
{
    [Fact]
    public async Task ABlockingEndOfMessageDoesNotHoldTheReadingThread()
    {
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        bool? released = null;
        var factory = new Factory(() => new RecordingHandler
        {
            Capabilities = new MilterHandlerCapabilities { RunOnThreadPool = true, NeedsHeaders = false },
            OnEom = _ =>
            {
                entered.Set();
                released = release.Wait(TimeSpan.FromSeconds(20)); // false if the test thread were the one blocked here
                return new(MilterVerdict.Continue);
            },
        });
        var connection = new InMemoryConnection();

        // Everything up to EOM is already waiting, so the whole message is processed inside the RunAsync call
        // below unless the handler's call goes elsewhere.
        await QueueOneMessageAsync(connection);

        Task<MilterConnectionEndReason> run = new MilterConnectionHandler(factory).RunAsync(connection.Server, new MilterConnectionInfo("c1"));

        // RunAsync came back while the handler is still blocked: the reading thread was not the handler's.
        Assert.True(entered.Wait(TimeSpan.FromSeconds(20)), "the handler was never called");
        Assert.False(run.IsCompleted);
        release.Set();
        await connection.Client.Output.CompleteAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(released, "the handler was released by the test, not by its own timeout");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AnInlineEventRunsOnTheReadingThreadAndTheRestOnThePool(bool rcptInline)
    {
        // Inline means: called by the thread inside RunAsync's synchronous part (a pool thread may be the same thread,
        // but only after that part returned).
        int reader = Environment.CurrentManagedThreadId;
        int insideRun = 0;
        bool? rcptOnReader = null, eomOnReader = null;
        var factory = new Factory(() => new RecordingHandler
        {
            Capabilities = new MilterHandlerCapabilities
            {
                Events = MilterEvents.Recipient,
                RunOnThreadPool = true,
                InlineEvents = rcptInline ? MilterEvents.Recipient : MilterEvents.None,
                NeedsHeaders = false,
            },
            OnRcpt = _ =>
            {
                rcptOnReader = Volatile.Read(ref insideRun) == 1 && Environment.CurrentManagedThreadId == reader;
                return MilterVerdict.Continue;
            },
            OnEom = _ =>
            {
                eomOnReader = Volatile.Read(ref insideRun) == 1 && Environment.CurrentManagedThreadId == reader;
                return new(MilterVerdict.Continue);
            },
        });
        var connection = new InMemoryConnection();
        await QueueOneMessageAsync(connection);
        await connection.Client.Output.CompleteAsync();

        // Every frame is already waiting: this thread reads them until the first call goes to the pool.
        Volatile.Write(ref insideRun, 1);
        Task<MilterConnectionEndReason> run = new MilterConnectionHandler(factory).RunAsync(connection.Server, new MilterConnectionInfo("c1"));
        Volatile.Write(ref insideRun, 0);
        await run.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(rcptInline, rcptOnReader);
        Assert.False(eomOnReader);
    }

    /// <summary>OPTNEG, MAIL, RCPT, BODY and EOM, all waiting in the connection before the session reads any.</summary>
    private static async Task QueueOneMessageAsync(InMemoryConnection connection)
    {
        TestMta mta = TestMta.Over(connection.Client);
        byte[] optneg = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(optneg, 6);
        BinaryPrimitives.WriteUInt32BigEndian(optneg.AsSpan(4), 0x1FF);
        BinaryPrimitives.WriteUInt32BigEndian(optneg.AsSpan(8), 0x1FFFFF);
        await mta.SendRawFrameAsync((byte)'O', optneg);
        await mta.SendRawFrameAsync((byte)'M', TestMta.CString("<a@x>"));
        await mta.SendRawFrameAsync((byte)'R', TestMta.CString("<b@x>"));
        await mta.SendRawFrameAsync((byte)'B', "hi\r\n"u8.ToArray());
        await mta.SendRawFrameAsync((byte)'E', ReadOnlyMemory<byte>.Empty);
    }
}
