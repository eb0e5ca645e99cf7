using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Protocol.Tests.Session;

/// <summary>
/// Peers that stall, trickle, stop reading or send more than any MTA would: each costs them their connection or
/// their message, never the daemon's memory or a connection slot for long.
/// </summary>
public class HostilePeerTests
{
    private static readonly byte[] s_body = "hello\r\n"u8.ToArray();

    private static readonly TimeSpan s_frameTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_idleTimeout = TimeSpan.FromMinutes(10);

    private static MilterSessionOptions Timed(ManualTimeProvider clock) =>
        new() { FrameTimeout = s_frameTimeout, IdleTimeout = s_idleTimeout, TimeProvider = clock };

    /// <summary>Moves the clock in steps until the session ends (bounded in real time, so a hang fails the test).</summary>
    private static async Task<MilterConnectionEndReason> AdvanceUntilEndAsync(SessionHarness h, ManualTimeProvider clock, TimeSpan step)
    {
        await Poll.UntilAsync(
            () =>
            {
                if (h.Run.IsCompleted)
                {
                    return true;
                }

                clock.Advance(step);
                return false;
            },
            $"the session to end as the clock moves in steps of {step}",
            interval: TimeSpan.FromMilliseconds(10));
        return await h.EndAsync();
    }

    [Fact]
    public async Task ConnectionThatNeverNegotiatesIsClosed()
    {
        var clock = new ManualTimeProvider();
        await using SessionHarness h = SessionHarness.Start(options: Timed(clock));
        Assert.Equal(MilterConnectionEndReason.NegotiationTimeout, await AdvanceUntilEndAsync(h, clock, TimeSpan.FromSeconds(1)));
        Assert.Contains("closed NegotiationTimeout messages=0", h.Observer.Lines);
        Assert.True(await h.Mta.WaitForCloseAsync());
    }

    [Fact]
    public async Task OneByteBeforeNegotiationDoesNotHoldTheConnection()
    {
        var clock = new ManualTimeProvider();
        await using SessionHarness h = SessionHarness.Start(options: Timed(clock));
        await h.Mta.SendBytesAsync(new byte[] { 0 });
        Assert.Equal(MilterConnectionEndReason.NegotiationTimeout, await AdvanceUntilEndAsync(h, clock, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task FrameBegunButNeverCompletedIsClosed()
    {
        var clock = new ManualTimeProvider();
        await using SessionHarness h = SessionHarness.Start(options: Timed(clock));
        await h.OpenAsync();
        await h.Mta.SendBytesAsync(new byte[] { 0, 0, 0, 10, (byte)'M', (byte)'<' });

        // Steps of 1 s: the idle deadline (10 min) is far; only the begun frame's 10 s can end the connection.
        Assert.Equal(MilterConnectionEndReason.FrameTimeout, await AdvanceUntilEndAsync(h, clock, TimeSpan.FromSeconds(1)));
        Assert.True(await h.Mta.WaitForCloseAsync());
    }

    [Fact]
    public async Task TricklingAFrameByteByByteDoesNotExtendItsDeadline()
    {
        var clock = new ManualTimeProvider();
        await using SessionHarness h = SessionHarness.Start(options: Timed(clock));
        await h.OpenAsync();
        byte[] frame = [0, 0, 1, 0, (byte)'M', .. new byte[255]];

        // One byte a second: each arrives well within FrameTimeout of the one before, the whole frame would take 260 s.
        for (int i = 0; i < frame.Length && !h.Run.IsCompleted; i++)
        {
            await h.Mta.SendBytesAsync(frame.AsMemory(i, 1));
            await Task.Delay(10); // pacing only: the fake clock, not this delay, decides when FrameTimeout expires
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(MilterConnectionEndReason.FrameTimeout, await h.EndAsync());
    }

    [Fact]
    public async Task SilentConnectionBetweenCommandsIsClosedAfterIdleTimeout()
    {
        var clock = new ManualTimeProvider();
        await using SessionHarness h = SessionHarness.Start(options: Timed(clock));
        await h.OpenAsync();
        Assert.Equal(MilterConnectionEndReason.IdleTimeout, await AdvanceUntilEndAsync(h, clock, TimeSpan.FromSeconds(30)));
        Assert.True(await h.Mta.WaitForCloseAsync());
    }

    [Fact]
    public async Task TimeTheHandlerTakesDoesNotCountAgainstThePeer()
    {
        // While the handler works, the clock passes both timeouts; the MTA is waiting on us, not idle.
        var clock = new ManualTimeProvider();
        var entered = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        await using SessionHarness h = SessionHarness.Start(
            () => new RecordingHandler { OnEom = async _ => { entered.SetResult(); await release.Task; return MilterVerdict.Continue; } },
            Timed(clock));
        await h.OpenAsync();
        Task<EndOfMessageResult> message = h.MessageAsync("QSLOW", "<a@x>", ["<b@x>"], s_body);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        clock.Advance(s_idleTimeout * 2);
        release.SetResult();
        EndOfMessageResult r = await message;
        Assert.Equal((byte)'c', r.Final.Code);
        await h.Mta.QuitAsync();
        Assert.Equal(MilterConnectionEndReason.Quit, await h.EndAsync());
    }

    [Fact]
    public async Task PeerThatStopsReadingOurRepliesIsClosed()
    {
        // A 4 MB replacement body fills the in-memory pipe (64 KiB before the writer pauses); the MTA never reads.
        var clock = new ManualTimeProvider();
        byte[] big = new byte[4 * 1024 * 1024];
        await using SessionHarness h = SessionHarness.Start(
            () => new RecordingHandler { OnEom = ctx => { ctx.ReplaceBody(big); return new(MilterVerdict.Continue); } },
            Timed(clock));
        await h.OpenAsync();
        await h.Mta.MailAsync("<a@x>");
        await h.Mta.RcptAsync("<b@x>");
        await h.Mta.BodyAsync(s_body);
        await h.Mta.SendRawFrameAsync((byte)MilterCommandCode.EndOfMessage, ReadOnlyMemory<byte>.Empty);
        Assert.Equal(MilterConnectionEndReason.WriteTimeout, await AdvanceUntilEndAsync(h, clock, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task AnMtaThatReadsManyEditsSlowlyButSteadilyKeepsItsConnection()
    {
        // 50,000 ADDRCPTs (~1.4 MB) read 1,000 at a time, one clock second per batch: 50 s in all, five times
        // FrameTimeout, as Postfix's cleanup takes its time per ADDRCPT. Each flush carries a bounded batch of
        // edits, so each one is read within FrameTimeout; one flush of all of them was not.
        var clock = new ManualTimeProvider();
        const int added = 50_000;
        await using SessionHarness h = SessionHarness.Start(
            () => new RecordingHandler
            {
                OnEom = ctx =>
                {
                    for (int i = 0; i < added; i++)
                    {
                        ctx.AddRecipient($"<member{i}@lists.example.org>");
                    }

                    return new(MilterVerdict.Continue);
                },
            },
            Timed(clock));
        await h.OpenAsync();
        await h.Mta.MailAsync("<a@x>");
        await h.Mta.RcptAsync("<b@x>");
        await h.Mta.BodyAsync(s_body);
        await h.Mta.SendRawFrameAsync((byte)MilterCommandCode.EndOfMessage, ReadOnlyMemory<byte>.Empty);
        int adds = 0;
        MilterReply reply;
        do
        {
            reply = await h.Mta.ReadReplyAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (reply.Code == (byte)'+')
            {
                adds++;
                if (adds % 1000 == 0)
                {
                    clock.Advance(TimeSpan.FromSeconds(1));
                    await Task.Delay(10);
                }
            }
        }
        while (reply.Code == (byte)'+');

        Assert.Equal((byte)'c', reply.Code);
        Assert.Equal(added, adds);
        Assert.False(h.Run.IsCompleted);
    }

    [Fact]
    public async Task MacroPacketReplacesTheValuesOfItsStage()
    {
        string? seenOld = null;
        string? seenNew = null;
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler
        {
            OnEom = ctx =>
            {
                seenOld = ctx.Macros.TryGetValue("{old}", out string o) ? o : null;
                seenNew = ctx.Macros.TryGetValue("{new}", out string n) ? n : null;
                return new(MilterVerdict.Continue);
            },
        });
        await h.Mta.NegotiateAsync();
        h.Mta.Macro(MilterCommandCode.Connect, "{old}", "1");
        h.Mta.Macro(MilterCommandCode.Connect, "{new}", "2");
        await h.Mta.ConnectAsync("client.example", "192.0.2.1");
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Null(seenOld);
        Assert.Equal("2", seenNew);
    }

    [Fact]
    public async Task ConnectionMacrosOverTheBudgetTempfailEveryMessageWithALogLine()
    {
        await using SessionHarness h = SessionHarness.Start(options: new MilterSessionOptions { MaxMacroBytes = 4096 });
        await h.Mta.NegotiateAsync();
        h.Mta.Macro(MilterCommandCode.Connect, "{huge}", new string('x', 5000));
        await h.Mta.ConnectAsync("client.example", "192.0.2.1");
        for (int i = 1; i <= 2; i++)
        {
            EndOfMessageResult r = await h.MessageAsync("QM" + i, "<a@x>", ["<b@x>"], s_body);
            Assert.Equal((byte)'y', r.Final.Code);
            Assert.StartsWith("451 4.3.0", r.Final.Strings[0], StringComparison.Ordinal);
            Assert.Contains(h.Observer.Lines, l => l.StartsWith($"over-limit MacroBytes QM{i} ", StringComparison.Ordinal) && l.Contains("MaxMacroBytes=4096", StringComparison.Ordinal));
            await h.Mta.AbortAsync();
        }

        Assert.DoesNotContain("eom", h.Handler.Events);
    }

    [Fact]
    public async Task MessageMacrosOverTheBudgetTempfailOnlyThatMessage()
    {
        await using SessionHarness h = SessionHarness.Start(options: new MilterSessionOptions { MaxMacroBytes = 4096 });
        await h.OpenAsync();
        await h.Mta.MailAsync("<a@x>");
        await h.Mta.RcptAsync("<b@x>");
        h.Mta.Macro(MilterCommandCode.Data, "{huge}", new string('x', 5000));
        await h.Mta.DataAsync();
        await h.Mta.BodyAsync(s_body);
        h.Mta.Macro(MilterCommandCode.EndOfMessage, "i", "Q1");
        EndOfMessageResult r1 = await h.Mta.EndOfMessageAsync();
        Assert.StartsWith("451 4.3.0", r1.Final.Strings[0], StringComparison.Ordinal);
        Assert.Contains(h.Observer.Lines, l => l.StartsWith("over-limit MacroBytes Q1 ", StringComparison.Ordinal));
        await h.Mta.AbortAsync();
        EndOfMessageResult r2 = await h.MessageAsync("Q2", "<a@x>", ["<b@x>"], s_body);
        Assert.Equal((byte)'c', r2.Final.Code);
    }

    [Fact]
    public async Task HeadersOverTheByteBudgetGet552AndALogLineWithTheQueueId()
    {
        await using SessionHarness h = SessionHarness.Start(options: new MilterSessionOptions { MaxHeaderBytes = 10_000 });
        await h.OpenAsync();
        (string, string)[] headers = [.. Enumerable.Range(0, 5).Select(i => ("X-Big" + i, new string('v', 3000)))];
        EndOfMessageResult r = await h.MessageAsync("QH", "<a@x>", ["<b@x>"], s_body, headers);
        Assert.Equal((byte)'y', r.Final.Code);
        Assert.StartsWith("552 5.3.4", r.Final.Strings[0], StringComparison.Ordinal);
        Assert.Contains(h.Observer.Lines, l => l.StartsWith("over-limit HeaderBytes QH ", StringComparison.Ordinal));
        Assert.DoesNotContain("eom", h.Handler.Events);
        await h.Mta.AbortAsync();
        Assert.Equal((byte)'c', (await h.MessageAsync("Q2", "<a@x>", ["<b@x>"], s_body, ("Subject", "ok"))).Final.Code);
    }

    [Fact]
    public async Task RecipientsPastTheBudgetGet452EachWhenTheMtaWaitsForRcptReplies()
    {
        var capabilities = new MilterHandlerCapabilities { Events = MilterEvents.Recipient, RequiredActions = MilterActions.ChangeBody };
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler { Capabilities = capabilities }, new MilterSessionOptions { MaxRecipients = 2 });
        await h.OpenAsync();
        Assert.True(h.Mta.ExpectsReply(MilterCommandCode.Recipient));
        await h.Mta.MailAsync("<a@x>");
        Assert.Equal((byte)'c', (await h.Mta.RcptAsync("<r1@x>"))!.Code);
        Assert.Equal((byte)'c', (await h.Mta.RcptAsync("<r2@x>"))!.Code);
        MilterReply third = (await h.Mta.RcptAsync("<r3@x>"))!;
        MilterReply fourth = (await h.Mta.RcptAsync("<r4@x>"))!;
        Assert.StartsWith("452 4.5.3", third.Strings[0], StringComparison.Ordinal);
        Assert.StartsWith("452 4.5.3", fourth.Strings[0], StringComparison.Ordinal);
        await h.Mta.BodyAsync(s_body);
        h.Mta.Macro(MilterCommandCode.EndOfMessage, "i", "QR");
        EndOfMessageResult r = await h.Mta.EndOfMessageAsync();
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Equal(["<r1@x>", "<r2@x>"], h.Handler.Messages[0].Recipients);
        Assert.Single(h.Observer.Lines, l => l.StartsWith("over-limit Recipients", StringComparison.Ordinal));
        Assert.DoesNotContain("rcpt:<r3@x>", h.Handler.Events);
    }

    [Fact]
    public async Task RecipientBytesPastTheBudgetGet452AtEndOfMessageWhenRcptIsNotAnswered()
    {
        await using SessionHarness h = SessionHarness.Start(options: new MilterSessionOptions { MaxRecipientBytes = 64 * 1024 });
        await h.OpenAsync();
        Assert.False(h.Mta.ExpectsReply(MilterCommandCode.Recipient));
        string[] recipients = [.. Enumerable.Range(0, 20).Select(i => $"<{new string('r', 8000)}{i}@x>")];
        EndOfMessageResult r = await h.MessageAsync("QRB", "<a@x>", recipients, s_body);
        Assert.Equal((byte)'y', r.Final.Code);
        Assert.StartsWith("452 4.5.3", r.Final.Strings[0], StringComparison.Ordinal);
        Assert.Contains(h.Observer.Lines, l => l.StartsWith("over-limit Recipients QRB ", StringComparison.Ordinal) && l.Contains("MaxRecipientBytes", StringComparison.Ordinal));
    }

    [Fact]
    public async Task FullSpoolDiskTempfails451WithALogLineAndTheNextMessageIsServed()
    {
        using var disk = TinyTmpfs.Mount("256k");
        await using SessionHarness h = SessionHarness.Start(options: new MilterSessionOptions { SpoolThreshold = 0, SpoolMemory = 0, TempDirectory = disk.Path });
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("QFULL", "<a@x>", ["<b@x>"], new byte[1024 * 1024]);
        Assert.Equal((byte)'y', r.Final.Code);
        Assert.StartsWith("451 4.3.0", r.Final.Strings[0], StringComparison.Ordinal);
        Assert.Contains(h.Observer.Lines, l => l.StartsWith("over-limit Spool QFULL ", StringComparison.Ordinal) && l.Contains("cannot store the body", StringComparison.Ordinal));
        await h.Mta.AbortAsync();

        // The failed write gave its space back: a body that fits goes through on the same connection.
        byte[] fits = Enumerable.Range(0, 100_000).Select(i => (byte)i).ToArray();
        EndOfMessageResult next = await h.MessageAsync("QNEXT", "<a@x>", ["<b@x>"], fits);
        Assert.Equal((byte)'c', next.Final.Code);
        Assert.Equal(fits, h.Handler.Messages[^1].Body);
    }
}
