using System.Text;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Protocol.Tests.Session;

public class MilterSessionTests
{
    private static readonly byte[] s_body = "hello\r\nworld\r\n"u8.ToArray();

    [Fact]
    public async Task SeveralMessagesOnOneConnectionKeepConnectionStateAndResetMessageState()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        EndOfMessageResult r1 = await h.MessageAsync("QID1", "<a@x>", ["<l@x>", "<m@x>"], s_body, ("Subject", "one"));
        await h.Mta.AbortAsync(); // Postfix sends ABORT after every message
        EndOfMessageResult r2 = await h.MessageAsync("QID2", "<b@x>", ["<n@x>"], "second\r\n"u8.ToArray(), ("Subject", "two"));
        await h.Mta.AbortAsync();
        await h.Mta.AbortAsync(); // and once more before QUIT
        await h.Mta.QuitAsync();
        Assert.Equal(MilterConnectionEndReason.Quit, await h.EndAsync());
        Assert.True(await h.Mta.WaitForCloseAsync(), "no stray replies after QUIT");

        Assert.Equal((byte)'c', r1.Final.Code);
        Assert.Equal((byte)'c', r2.Final.Code);
        RecordingHandler handler = h.Handler;
        Assert.Equal(2, handler.Messages.Count);
        Assert.Equal(("<a@x>", "QID1"), (handler.Messages[0].Sender, handler.Messages[0].QueueId));
        Assert.Equal(["<l@x>", "<m@x>"], handler.Messages[0].Recipients);
        Assert.Equal(("<b@x>", "QID2"), (handler.Messages[1].Sender, handler.Messages[1].QueueId));
        Assert.Equal(["<n@x>"], handler.Messages[1].Recipients);
        Assert.Equal(["Subject:two"], handler.Messages[1].Headers);
        Assert.Equal("second\r\n"u8.ToArray(), handler.Messages[1].Body);
        Assert.DoesNotContain("abort", handler.Events); // ABORT after a finished message is not a message abort
        Assert.True(handler.Disposed);
        Assert.Single(h.Factory.Created);
    }

    public static TheoryData<string> Stages => ["mail", "rcpt", "data", "header", "eoh", "body"];

    [Theory]
    [MemberData(nameof(Stages))]
    public async Task AbortAtEachStageResetsOnlyTheMessage(string stage)
    {
        var handler = new RecordingHandler { Capabilities = new() { Events = MilterEvents.Connect | MilterEvents.Helo, RequiredActions = MilterActions.ChangeBody } };
        await using SessionHarness h = SessionHarness.Start(() => handler);
        await h.OpenAsync();
        TestMta m = h.Mta;
        await m.MailAsync("<first@x>");
        if (stage != "mail")
        {
            await m.RcptAsync("<r1@x>");
        }

        if (stage is "data" or "header" or "eoh" or "body")
        {
            await m.DataAsync();
        }

        if (stage is "header" or "eoh" or "body")
        {
            await m.HeaderAsync("Subject", "first");
        }

        if (stage is "eoh" or "body")
        {
            await m.EndOfHeadersAsync();
        }

        if (stage == "body")
        {
            await m.BodyAsync("first body\r\n"u8.ToArray());
        }

        await m.AbortAsync();
        EndOfMessageResult r = await h.MessageAsync("Q2", "<second@x>", ["<r2@x>"], s_body, ("Subject", "second"));
        Assert.Equal((byte)'c', r.Final.Code);
        await m.AbortAsync();
        await m.QuitAsync();
        Assert.Equal(MilterConnectionEndReason.Quit, await h.EndAsync());

        Assert.Equal(["connect:client.example", "helo:client.example", "abort", "eom"], handler.Events);
        var msg = Assert.Single(handler.Messages);
        Assert.Equal("<second@x>", msg.Sender);
        Assert.Equal(["<r2@x>"], msg.Recipients);
        Assert.Equal(["Subject:second"], msg.Headers);
        Assert.Equal(s_body, msg.Body);
    }

    [Fact]
    public async Task AbortTwiceAndAbortWithNoMessageAreHarmless()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.Mta.AbortAsync();
        await h.Mta.AbortAsync();
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);
        await h.Mta.AbortAsync();
        await h.Mta.AbortAsync();
        await h.Mta.QuitAsync();
        Assert.Equal(MilterConnectionEndReason.Quit, await h.EndAsync());
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.DoesNotContain("abort", h.Handler.Events);
    }

    [Fact]
    public async Task QuitNewConnectionStartsAFreshHandlerWithoutRenegotiation()
    {
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler { Capabilities = new() { Events = MilterEvents.Connect, RequiredActions = MilterActions.ChangeBody } });
        await h.OpenAsync();
        await h.MessageAsync("Q1", "<a@x>", ["<b@x>"], s_body);
        await h.Mta.AbortAsync();
        await h.Mta.QuitNewConnectionAsync();
        h.Mta.Macro(MilterCommandCode.Connect, "j", "mx.test");
        await h.Mta.ConnectAsync("other.example", "192.0.2.2");
        EndOfMessageResult r = await h.MessageAsync("Q2", "<c@x>", ["<d@x>"], s_body);
        await h.Mta.QuitAsync();
        Assert.Equal(MilterConnectionEndReason.Quit, await h.EndAsync());
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Equal(2, h.Factory.Created.Count);
        Assert.True(h.Factory.Created[0].Disposed);
        Assert.Equal(["connect:other.example", "eom"], h.Factory.Created[1].Events);
    }

    public static TheoryData<string> OutOfOrder => ["connect-before-optneg", "optneg-twice", "rcpt-before-mail", "eom-without-message", "mail-inside-message", "header-after-body", "connect-inside-message"];

    [Theory]
    [MemberData(nameof(OutOfOrder))]
    public async Task OutOfOrderCommandClosesTheConnectionWithAReason(string scenario)
    {
        await using SessionHarness h = SessionHarness.Start();
        TestMta m = h.Mta;
        try
        {
            if (scenario == "connect-before-optneg")
            {
                await m.SendRawFrameAsync((byte)'C', TestMta.Strings(["h"]).Concat(new byte[] { (byte)'U' }).ToArray());
            }
            else
            {
                await h.OpenAsync();
                switch (scenario)
                {
                    case "optneg-twice":
                        await m.SendRawFrameAsync((byte)'O', new byte[12]);
                        break;
                    case "rcpt-before-mail":
                        await m.SendRawFrameAsync((byte)'R', TestMta.CString("<a@b>"));
                        break;
                    case "eom-without-message":
                        await m.SendRawFrameAsync((byte)'E', ReadOnlyMemory<byte>.Empty);
                        break;
                    case "mail-inside-message":
                        await m.MailAsync("<a@b>");
                        await m.SendRawFrameAsync((byte)'M', TestMta.CString("<c@d>"));
                        break;
                    case "header-after-body":
                        await m.MailAsync("<a@b>");
                        await m.RcptAsync("<c@d>");
                        await m.BodyAsync("x"u8.ToArray());
                        await m.SendRawFrameAsync((byte)'L', TestMta.Strings(["A", "b"]));
                        break;
                    case "connect-inside-message":
                        await m.MailAsync("<a@b>");
                        await m.SendRawFrameAsync((byte)'C', TestMta.Strings(["h"]).Concat(new byte[] { (byte)'U' }).ToArray());
                        break;
                }
            }
        }
        catch (MilterProtocolException)
        {
            // The milter may close the connection (completing our pipe with its reason) before our own
            // flush of the offending frame returns: that is the behaviour under test, not a failure.
        }

        Assert.Equal(MilterConnectionEndReason.ProtocolViolation, await h.EndAsync());
        Assert.Equal(MilterViolation.CommandOutOfOrder, h.Observer.Violation);
        Assert.True(await m.WaitForCloseAsync());
    }

    [Fact]
    public async Task AbsurdLengthClosesTheConnectionAndNeverAllocatesTheClaimedSize()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        long before = GC.GetTotalAllocatedBytes(precise: true);
        await h.Mta.SendBytesAsync(new byte[] { 0xFF, 0xFF, 0xFF, 0xF0, (byte)'B', 1, 2, 3 });
        Assert.Equal(MilterConnectionEndReason.ProtocolViolation, await h.EndAsync());
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(MilterViolation.FrameTooLarge, h.Observer.Violation);
        Assert.Contains(h.Observer.Lines, l => l.Contains("exceeds the limit", StringComparison.Ordinal));
        Assert.True(allocated < 64L * 1024 * 1024, $"allocated {allocated} bytes for a 4 GB claim");
    }

    [Fact]
    public async Task ZeroLengthClosesTheConnection()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.Mta.SendBytesAsync(new byte[4]);
        Assert.Equal(MilterConnectionEndReason.ProtocolViolation, await h.EndAsync());
        Assert.Equal(MilterViolation.ZeroLength, h.Observer.Violation);
    }

    [Fact]
    public async Task UnknownCommandCodeClosesTheConnection()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.Mta.SendRawFrameAsync((byte)'Z', ReadOnlyMemory<byte>.Empty);
        Assert.Equal(MilterConnectionEndReason.ProtocolViolation, await h.EndAsync());
        Assert.Equal(MilterViolation.UnknownCommand, h.Observer.Violation);
    }

    [Fact]
    public async Task EofInsideAFrameIsATruncatedFrame()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.Mta.SendBytesAsync(new byte[] { 0, 0, 0, 10, (byte)'M', (byte)'<' });
        await h.Connection.Client.Output.CompleteAsync();
        Assert.Equal(MilterConnectionEndReason.ProtocolViolation, await h.EndAsync());
        Assert.Equal(MilterViolation.TruncatedFrame, h.Observer.Violation);
    }

    [Fact]
    public async Task EofBetweenFramesIsANormalEnd()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.Connection.Client.Output.CompleteAsync();
        Assert.Equal(MilterConnectionEndReason.PeerClosed, await h.EndAsync());
        Assert.Null(h.Observer.Violation);
    }

    [Fact]
    public async Task MissingRequiredActionTempfailsEachMessageWithALogLine()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.Mta.NegotiateAsync(actions: MilterActions.AddHeaders | MilterActions.ChangeHeaders);
        Assert.Equal(MilterActions.None, h.Mta.Actions & ~(MilterActions.AddHeaders | MilterActions.ChangeHeaders));
        await h.Mta.ConnectAsync("c", "192.0.2.1");
        EndOfMessageResult r = await h.MessageAsync("QM", "<a@x>", ["<b@x>"], s_body);
        Assert.Equal((byte)'t', r.Final.Code);
        Assert.Empty(r.Modifications);
        Assert.Contains(h.Observer.Lines, l => l.StartsWith("missing", StringComparison.Ordinal));
        Assert.Contains("tempfail-missing QM", h.Observer.Lines);
        Assert.DoesNotContain("eom", h.Handler.Events);
    }

    [Fact]
    public async Task ModificationsGoOutInLegalOrderWithBodyChunksConsecutiveAndOneFinalReply()
    {
        byte[] replacement = Enumerable.Range(0, 200_000).Select(i => (byte)('a' + (i % 26))).ToArray();
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler
        {
            OnEom = ctx =>
            {
                ctx.ReplaceBody(replacement);
                ctx.AddHeader("X-List", "yes");
                ctx.DeleteRecipient(ctx.Recipients[0].Address);
                ctx.AddRecipient("<m1@x>");
                ctx.AddRecipient("<m2@x>", "NOTIFY=NEVER");
                ctx.ChangeHeader(1, "Subject", "changed");
                ctx.Quarantine("held");
                return new(MilterVerdict.Continue);
            },
        });
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<list@x>"], s_body, ("Subject", "s"));
        Assert.Equal((byte)'c', r.Final.Code);
        string codes = new(r.Modifications.Select(m => (char)m.Code).ToArray());
        Assert.Equal("h-+2mqbbbb", codes);
        Assert.All(r.BodyChunks, c => Assert.True(c.Payload.Length <= 65535));
        Assert.Equal(replacement, r.ReplacedBody);
        Assert.Equal(["<list@x>"], r.DeletedRecipients);
        Assert.Equal(["<m1@x>", "<m2@x>"], r.AddedRecipients);
    }

    [Fact]
    public async Task ReplaceBodyFromTheSpoolStreamEchoesTheBody()
    {
        byte[] body = Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray();
        await using SessionHarness h = SessionHarness.Start(
            () => new RecordingHandler { OnEom = ctx => { ctx.ReplaceBody(ctx.Body.OpenRead()); return new(MilterVerdict.Continue); } },
            new MilterSessionOptions { SpoolThreshold = 64 * 1024 });
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], body);
        Assert.Equal(body, r.ReplacedBody);
        Assert.Equal(5, r.BodyChunks.Count);
    }

    [Fact]
    public async Task ModificationOutsideEndOfMessageThrowsInOurCode()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);
        MilterMessageContext stale = h.Handler.LastContext!;
        Assert.Throws<InvalidOperationException>(() => stale.AddRecipient("<late@x>"));
        Assert.Throws<InvalidOperationException>(() => stale.ReplaceBody(new byte[1]));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await stale.SendProgressAsync());
        await h.Mta.QuitAsync();
        Assert.Equal(MilterConnectionEndReason.Quit, await h.EndAsync());
        Assert.True(await h.Mta.WaitForCloseAsync(), "nothing reached the wire");
    }

    [Fact]
    public async Task ActionNotGrantedThrowsAndNothingGoesOnTheWire()
    {
        Exception? seen = null;
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler
        {
            OnEom = ctx =>
            {
                seen = Record.Exception(() => ctx.ChangeFrom("<new@x>"));
                return new(MilterVerdict.Continue);
            },
        });
        await h.Mta.NegotiateAsync(actions: MilterActions.ChangeBody | MilterActions.AddRecipient | MilterActions.DeleteRecipient);
        await h.Mta.ConnectAsync("c", "192.0.2.1");
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);
        Assert.IsType<InvalidOperationException>(seen);
        Assert.Empty(r.Modifications);
        Assert.Equal((byte)'c', r.Final.Code);
    }

    [Fact]
    public async Task ProgressIsSentBeforeTheFinalReply()
    {
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler
        {
            OnEom = async ctx =>
            {
                await ctx.SendProgressAsync();
                await ctx.SendProgressAsync();
                return MilterVerdict.Accept;
            },
        });
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);
        Assert.Equal(2, r.ProgressCount);
        Assert.Equal((byte)'a', r.Final.Code);
    }

    [Fact]
    public async Task ReplyCodeVerdictIsSentAsTheFinalReply()
    {
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler { OnEom = _ => new(MilterVerdict.Reply(550, "5.7.1", "no list")) });
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("Q", "<a@x>", ["<b@x>"], s_body);
        Assert.Equal((byte)'y', r.Final.Code);
        Assert.Equal("550 5.7.1 no list", r.Final.Strings[0]);
    }

    [Fact]
    public async Task HandlerExceptionTempfailsTheMessageAndTheConnectionGoesOn()
    {
        int n = 0;
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler
        {
            OnEom = _ => ++n == 1 ? throw new FormatException("boom") : new(MilterVerdict.Continue),
        });
        await h.OpenAsync();
        Assert.Equal((byte)'t', (await h.MessageAsync("Q1", "<a@x>", ["<b@x>"], s_body)).Final.Code);
        await h.Mta.AbortAsync();
        Assert.Equal((byte)'c', (await h.MessageAsync("Q2", "<a@x>", ["<b@x>"], s_body)).Final.Code);
        Assert.Contains("handler-failed eom FormatException", h.Observer.Lines);
    }

    [Fact]
    public async Task RejectedRecipientIsLeftOutOfTheEnvelope()
    {
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler
        {
            Capabilities = new() { Events = MilterEvents.Recipient, RequiredActions = MilterActions.ChangeBody },
            OnRcpt = r => r == "<bad@x>" ? MilterVerdict.Reply(550, "5.1.1", "no such list") : MilterVerdict.Continue,
        });
        await h.Mta.NegotiateAsync();
        Assert.False(h.Mta.ExpectsReply(MilterCommandCode.Mail));
        Assert.True(h.Mta.ExpectsReply(MilterCommandCode.Recipient));
        await h.Mta.MailAsync("<a@x>");
        Assert.Equal((byte)'c', (await h.Mta.RcptAsync("<good@x>"))!.Code);
        Assert.Equal((byte)'y', (await h.Mta.RcptAsync("<bad@x>"))!.Code);
        await h.Mta.BodyAsync(s_body);
        EndOfMessageResult r = await h.Mta.EndOfMessageAsync();
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Equal(["<good@x>"], h.Handler.Messages[0].Recipients);
    }

    [Fact]
    public async Task BodyOverTheLimitGets552WithoutCallingTheHandler()
    {
        await using SessionHarness h = SessionHarness.Start(options: new MilterSessionOptions { MaxMessageSize = 100_000, SpoolThreshold = 1000 });
        await h.OpenAsync();
        EndOfMessageResult r = await h.MessageAsync("QBIG", "<a@x>", ["<b@x>"], new byte[300_000]);
        Assert.Equal((byte)'y', r.Final.Code);
        Assert.StartsWith("552 5.3.4", r.Final.Strings[0], StringComparison.Ordinal);
        Assert.Contains("too-large QBIG", h.Observer.Lines);
        Assert.DoesNotContain("eom", h.Handler.Events);

        // The next message on the connection is processed normally.
        await h.Mta.AbortAsync();
        Assert.Equal((byte)'c', (await h.MessageAsync("Q2", "<a@x>", ["<b@x>"], s_body)).Final.Code);
    }

    [Fact]
    public async Task BodyOverTheLimitIsAnsweredAtBodyWhenTheMtaExpectsBodyReplies()
    {
        await using SessionHarness h = SessionHarness.Start(options: new MilterSessionOptions { MaxMessageSize = 100_000 });
        await h.Mta.NegotiateAsync(protocol: (MilterProtocolOptions)0x1FFFFF & ~MilterProtocolOptions.NoReplyBody);
        await h.Mta.MailAsync("<a@x>");
        await h.Mta.RcptAsync("<b@x>");
        MilterReply? reply = await h.Mta.BodyAsync(new byte[300_000]);
        Assert.Equal((byte)'y', reply!.Code);
        await h.Mta.AbortAsync();
        await h.Mta.QuitAsync();
        Assert.Equal(MilterConnectionEndReason.Quit, await h.EndAsync());
    }

    [Fact]
    public async Task SpilledBodyReachesTheHandlerIntactAndTheTempFileIsGoneAfterTheMessage()
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-spool-").FullName;
        try
        {
            byte[] body = Enumerable.Range(0, 250_000).Select(i => (byte)(i * 7)).ToArray();
            int filesDuringEom = -1;
            await using SessionHarness h = SessionHarness.Start(
                () => new RecordingHandler { OnEom = ctx => { filesDuringEom = System.IO.Directory.GetFiles(dir).Length; Assert.True(ctx.Body.IsSpilledToFile); return new(MilterVerdict.Continue); } },
                new MilterSessionOptions { SpoolThreshold = 10_000, TempDirectory = dir });
            await h.OpenAsync();
            await h.MessageAsync("Q", "<a@x>", ["<b@x>"], body);
            Assert.Equal(body, h.Handler.Messages[0].Body);
            Assert.Equal(0, filesDuringEom); // spilled into the connection's unlinked temp file
            Assert.Empty(System.IO.Directory.GetFiles(dir));
        }
        finally
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task DrainClosesAnIdleConnection()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.Drain.CancelAsync();
        Assert.Equal(MilterConnectionEndReason.Drained, await h.EndAsync());
    }

    [Fact]
    public async Task DrainFinishesTheOpenMessageFirst()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.OpenAsync();
        await h.Mta.MailAsync("<a@x>");
        await h.Mta.RcptAsync("<b@x>");
        await h.Mta.FlushAsync();
        await h.Drain.CancelAsync();
        await h.Mta.BodyAsync(s_body);
        EndOfMessageResult r = await h.Mta.EndOfMessageAsync();
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Equal(MilterConnectionEndReason.Drained, await h.EndAsync());
        Assert.Single(h.Handler.Messages);
    }

    [Fact]
    public async Task MacrosAreScopedByStage()
    {
        await using SessionHarness h = SessionHarness.Start(() => new RecordingHandler
        {
            OnEom = ctx =>
            {
                Assert.True(ctx.Macros.TryGetValue("j", out string j));
                Assert.Equal("mx.test", j);
                Assert.True(ctx.Macros.TryGetValue("{rcpt_addr}", out string r));
                Assert.Equal("second@x", r);
                Assert.True(ctx.Macros.TryGetValue("mail_addr", out _)); // braces optional
                return new(MilterVerdict.Continue);
            },
        });
        await h.OpenAsync();
        await h.MessageAsync("Q1", "<a@x>", ["<first@x>"], s_body);
        await h.Mta.AbortAsync();
        EndOfMessageResult r = await h.MessageAsync("Q2", "<a@x>", ["<second@x>"], s_body);
        Assert.Equal((byte)'c', r.Final.Code);
        Assert.Equal(2, h.Handler.Messages.Count);
        Assert.Equal("Q2", h.Handler.Messages[1].QueueId);
    }

    [Fact]
    public async Task NegotiationAsksForTheQueueIdMacroAtEndOfMessage()
    {
        await using SessionHarness h = SessionHarness.Start();
        await h.Mta.NegotiateAsync();
        Assert.Equal([0, 0, 0, 5, (byte)'i', 0], h.Mta.NegotiationTrailer);
        Assert.True((h.Mta.Actions & MilterActions.SetSymbolList) != 0);
        Assert.Equal(Encoding.ASCII.GetBytes("i\0"), h.Mta.NegotiationTrailer[4..]);
    }
}
