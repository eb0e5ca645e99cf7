using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Directory;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;
using static MilterSecureList.Filter.Tests.FilterTestKit;

namespace MilterSecureList.Filter.Tests;

/// <summary>The lists handler on the wire: the real protocol session over an in-memory pipe, driven as Postfix does.</summary>
public sealed class ListFilterHandlerTests
{
    private const string List = "crypto@lists.example.org";

    private static async Task<(TestMta Mta, RecordingMetrics Metrics)> StartAsync(FakeDirectory directory)
    {
        var metrics = new RecordingMetrics();
        var processor = new ListMessageProcessor(directory, new PolicyOptions(), new RecordingOwnerNotifier(), NullLogger.Instance);
        var handler = new MilterConnectionHandler(new ListFilterHandlerFactory(processor, NullLogger.Instance, metrics), new MilterSessionOptions());
        var connection = new InMemoryConnection();
        _ = Task.Run(() => handler.RunAsync(connection.Server, new MilterConnectionInfo("t1"), CancellationToken.None));
        TestMta mta = TestMta.Over(connection.Client);
        await mta.NegotiateAsync();
        await mta.ConnectAsync("client.example", "192.0.2.1");
        await mta.HeloAsync("client.example");
        return (mta, metrics);
    }

    /// <summary>RCPT to the list, the S/MIME headers and the encrypted body; each step must be answered CONTINUE.</summary>
    private static async Task SendPostUpToEndOfMessageAsync(TestMta mta)
    {
        Assert.Equal(MilterResponseCode.Continue, (await mta.RcptAsync($"<{List}>"))!.Response);
        foreach (HeaderField h in SmimeHeaders)
        {
            await mta.HeaderAsync(h.Name, h.Value);
        }

        Assert.Equal(MilterResponseCode.Continue, (await mta.EndOfHeadersAsync())!.Response);
        await mta.BodyAsync(Base64Body(Encrypt(List)).ToArray());
    }

    private static FakeDirectory Dir(PostingPolicy posting = PostingPolicy.Open) =>
        NewDirectory(List, ListMode.Rekey, posting, null, Member("alice@example.org"), Member("bob@example.org"));

    [Fact]
    public async Task AListPostGetsEnvelopeAndHeaderEditsThenOneConsecutiveBodyReplacementThenContinue()
    {
        (TestMta mta, RecordingMetrics metrics) = await StartAsync(Dir());
        await using TestMta owned = mta;
        mta.Macro(MilterCommandCode.Mail, "i", "ABC123");
        await mta.MailAsync("<dave@example.com>");
        await SendPostUpToEndOfMessageAsync(mta);
        mta.Macro(MilterCommandCode.EndOfMessage, "i", "ABC123");
        EndOfMessageResult eom = await mta.EndOfMessageAsync();

        Assert.Equal(MilterResponseCode.Continue, eom.Final.Response);
        Assert.Equal([$"<{List}>"], eom.DeletedRecipients);
        Assert.Equal(["<alice@example.org>", "<bob@example.org>"], eom.AddedRecipients);
        int firstBody = eom.Modifications.FindIndex(m => m.Response == MilterResponseCode.ReplaceBody);
        int lastBody = eom.Modifications.FindLastIndex(m => m.Response == MilterResponseCode.ReplaceBody);
        Assert.True(firstBody > 0);
        Assert.Equal(lastBody, eom.Modifications.Count - 1); // Postfix refuses edits mixed into a body replacement
        Assert.All(eom.BodyChunks, c => Assert.True(c.Payload.Length <= 65535));
        Assert.Equal(Entity, DecryptAs(new MemoryStream(eom.ReplacedBody!), "bob@example.org"));
        Assert.Equal(1, metrics.Seen);
        Assert.Equal(2, Assert.Single(metrics.Rekeyed));
    }

    [Fact]
    public async Task MailToNoListIsAcceptedAtEndOfHeadersSoNoBodyIsTransferred()
    {
        (TestMta mta, RecordingMetrics metrics) = await StartAsync(Dir());
        await using TestMta owned = mta;
        await mta.MailAsync("<dave@example.com>");
        await mta.RcptAsync("<bob@example.org>");
        await mta.HeaderAsync("Subject", "hi");
        Assert.Equal(MilterResponseCode.Accept, (await mta.EndOfHeadersAsync())!.Response);
        Assert.Equal(["pass"], metrics.Verdicts);
        await mta.AbortAsync();

        // The connection goes on with the next message, as Postfix does after ABORT.
        await mta.MailAsync("<dave@example.com>");
        Assert.Equal(MilterResponseCode.Continue, (await mta.RcptAsync($"<{List}>"))!.Response);
    }

    [Fact]
    public async Task ANonMemberIsRefusedAtRcptWithAReplyCodeAndTheSessionGoesOn()
    {
        (TestMta mta, RecordingMetrics metrics) = await StartAsync(Dir(PostingPolicy.MembersOnly));
        await using TestMta owned = mta;
        mta.Macro(MilterCommandCode.Mail, "{mail_addr}", "dave@example.com");
        await mta.MailAsync("<dave@example.com>");
        MilterReply reply = (await mta.RcptAsync($"<{List}>"))!;
        Assert.Equal(["reject"], metrics.Verdicts);
        Assert.Equal(MilterResponseCode.ReplyCode, reply.Response);
        Assert.StartsWith("550 5.7.1 <crypto@lists.example.org> accepts posts from its members only", Encoding.ASCII.GetString(reply.Payload), StringComparison.Ordinal);
        Assert.Equal(MilterResponseCode.Continue, (await mta.RcptAsync("<bob@example.org>"))!.Response);
    }

    [Fact]
    public async Task MailGetsNoReplyAndTheSenderMacroIsAskedForAtMail()
    {
        (TestMta mta, _) = await StartAsync(Dir());
        await using TestMta owned = mta;
        Assert.True((mta.Protocol & MilterProtocolOptions.NoReplyMail) != 0);
        Assert.Contains("{mail_addr}", Encoding.ASCII.GetString(mta.NegotiationTrailer), StringComparison.Ordinal);
        Assert.Null(await mta.MailAsync("<dave@example.com>"));
    }

    [Fact]
    public async Task WithoutTheSenderMacroANonMemberPassesRcptAndIsRefusedAtEndOfMessage()
    {
        (TestMta mta, RecordingMetrics metrics) = await StartAsync(Dir(PostingPolicy.MembersOnly));
        await using TestMta owned = mta;
        await mta.MailAsync("<dave@example.com>");
        await SendPostUpToEndOfMessageAsync(mta);
        EndOfMessageResult eom = await mta.EndOfMessageAsync();
        Assert.Equal(MilterResponseCode.ReplyCode, eom.Final.Response);
        Assert.StartsWith("550 5.7.1 <crypto@lists.example.org> accepts posts from its members only", Encoding.ASCII.GetString(eom.Final.Payload), StringComparison.Ordinal);
        Assert.Empty(eom.Modifications);
        Assert.Empty(metrics.Verdicts); // nothing was refused at RCPT
    }

    [Fact]
    public async Task AListRecipientOfAnAbortedMessageDoesNotMakeTheNextMessageSendItsBody()
    {
        (TestMta mta, _) = await StartAsync(Dir());
        await using TestMta owned = mta;
        await mta.MailAsync("<dave@example.com>");
        await mta.RcptAsync($"<{List}>");
        await mta.AbortAsync();
        await mta.MailAsync("<dave@example.com>");
        await mta.RcptAsync("<bob@example.org>");
        await mta.HeaderAsync("Subject", "hi");
        Assert.Equal(MilterResponseCode.Accept, (await mta.EndOfHeadersAsync())!.Response);
    }

    [Fact]
    public async Task APlaintextPostIsRejectedAtEndOfMessageWithTheReplyText()
    {
        (TestMta mta, _) = await StartAsync(Dir());
        await using TestMta owned = mta;
        await mta.MailAsync("<dave@example.com>");
        await mta.RcptAsync($"<{List}>");
        await mta.HeaderAsync("Content-Type", "text/plain");
        await mta.EndOfHeadersAsync();
        await mta.BodyAsync("hello\r\n"u8.ToArray());
        EndOfMessageResult eom = await mta.EndOfMessageAsync();
        Assert.Equal(MilterResponseCode.ReplyCode, eom.Final.Response);
        Assert.StartsWith("550 5.7.1 <crypto@lists.example.org> accepts only S/MIME mail", Encoding.ASCII.GetString(eom.Final.Payload), StringComparison.Ordinal);
        Assert.Empty(eom.Modifications);
    }
}

/// <summary>What the handler reports through <see cref="IFilterMetrics"/> (the daemon's counters are tested there).</summary>
internal sealed class RecordingMetrics : IFilterMetrics
{
    public int Seen { get; private set; }

    public List<string> Verdicts { get; } = [];

    public List<int> Rekeyed { get; } = [];

    public void MessageSeen() => Seen++;

    public void Verdict(string kind) => Verdicts.Add(kind);

    public void Completed(FilterDecision decision, TimeSpan elapsed) => Rekeyed.Add(decision.MembersRekeyed);
}
