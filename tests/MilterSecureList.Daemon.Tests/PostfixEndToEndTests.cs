using System.Text;
using Microsoft.Extensions.Hosting;
using MilterSecureList.Daemon.Hosting;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Daemon.Tests;

/// <summary>A real Postfix 3.7 (throwaway instance on loopback) in front of the milter; smtp-sink shows what arrived.</summary>
[Collection("postfix")] // one Postfix at a time: they are heavy on 2 shared cores
public class PostfixEndToEndTests
{
    private static readonly TimeSpan s_deliveryTimeout = TimeSpan.FromSeconds(90);

    private static byte[] Message(string subject, string body) => Encoding.ASCII.GetBytes(
        $"From: s@example.org\r\nTo: list@example.com\r\nSubject: {subject}\r\nMessage-Id: <{Guid.NewGuid():N}@example.org>\r\n\r\n{body}");

    private static string Body(int lines, string tag)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < lines; i++)
        {
            sb.Append(i % 50 == 0 ? "." : string.Empty).Append(tag).Append(" line ").Append(i).Append(" 0123456789abcdefghijklmnopqrstuvwxyz\r\n");
        }

        return sb.ToString();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task EchoDaemonChangesRecipientsAndKeepsTheBodyForSeveralMessagesInOneSession(bool unix)
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\nSocketMode = 0660\nSocketGroup = postfix\n[Milter]\nHandler = echo\nEchoRecipients = 3\nSpoolThreshold = 64K\n", unix);
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);

        string body1 = Body(4000, "first");   // ~220 KB: several BODY and REPLBODY chunks, spilled to a temp file
        string body2 = Body(10, "second");
        IReadOnlyList<SmtpResult> results = await postfix.SendManyAsync(
        [
            ("s@example.org", ["list@example.com", "other@example.com"], Message("one", body1)),
            ("s@example.org", ["list2@example.com"], Message("two", body2)),
        ]);
        Assert.All(results, r => Assert.Equal(250, r.Code));

        IReadOnlyList<SinkMessage> got = await postfix.WaitForSinkMessagesAsync(2, s_deliveryTimeout);
        SinkMessage m1 = Assert.Single(got, m => m.Headers.Contains("Subject: one", StringComparison.Ordinal));
        SinkMessage m2 = Assert.Single(got, m => m.Headers.Contains("Subject: two", StringComparison.Ordinal));
        Assert.Equal(["<echo1@echo.invalid>", "<echo2@echo.invalid>", "<echo3@echo.invalid>", "<other@example.com>"], m1.Recipients.Order(StringComparer.Ordinal));
        Assert.Equal(["<echo1@echo.invalid>", "<echo2@echo.invalid>", "<echo3@echo.invalid>"], m2.Recipients.Order(StringComparer.Ordinal));
        Assert.Equal(body1.ReplaceLineEndings("\n"), m1.Body);
        Assert.Equal(body2.ReplaceLineEndings("\n"), m2.Body);
        string log = postfix.ReadMailLog();
        Assert.DoesNotContain("warning: milter", log, StringComparison.Ordinal);
        Assert.Equal(0, await daemon.StopAsync());
        Assert.Matches(@"[0-9A-F]{6,}: conn=\S+ verdict=continue rcpts=2", daemon.Output); // the Postfix queue id {i} is logged
    }

    [Fact]
    public async Task ReplacedBodyHeadersAndRecipientsArriveAsTheHandlerWroteThem()
    {
        // In-process host (real Kestrel path) with a handler whose edits are visible downstream.
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-inproc-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0x1ED);
        string ini = Path.Combine(dir, "milter.ini");
        await File.WriteAllTextAsync(ini, $"[Listener]\nSocket = unix:{dir}/m.sock\nSocketMode = 0666\n[Logging]\nLevel = warn\n");
        using IHost host = DaemonHost.Build(DaemonConfiguration.Load(ini), new TransformingHandlerFactory());
        await host.StartAsync();
        try
        {
            await using PostfixInstance postfix = await PostfixInstance.StartAsync($"unix:{dir}/m.sock");
            SmtpResult r = await postfix.SendAsync("s@example.org", ["list@example.com"], Message("t", Body(3000, "orig")));
            Assert.Equal(250, r.Code);
            SinkMessage m = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_deliveryTimeout));
            Assert.Equal(["<member1@example.net>", "<member2@example.net>"], m.Recipients.Order(StringComparer.Ordinal));
            Assert.Contains("X-Transformed: yes", m.Headers, StringComparison.Ordinal);
            Assert.Contains("Subject: changed", m.Headers, StringComparison.Ordinal);
            Assert.Equal(TransformingHandler.Transform(Body(3000, "orig")).ReplaceLineEndings("\n"), m.Body);
        }
        finally
        {
            await host.StopAsync();
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task AddedRecipientsGoThroughPostfixVirtualAliasExpansion()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\nSocketMode = 0666\n[Milter]\nHandler = echo\nEchoRecipients = 2\n");
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);
        string map = await postfix.WriteMapAsync("virtual", [("echo2@echo.invalid", "x1@example.org, x2@example.org")]);
        await postfix.ReconfigureAsync($"virtual_alias_maps = {map}");
        Assert.Equal(250, (await postfix.SendAsync("s@example.org", ["list@example.com"], Message("alias", "hi\r\n"))).Code);
        SinkMessage m = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_deliveryTimeout));
        Assert.Equal(["<echo1@echo.invalid>", "<x1@example.org>", "<x2@example.org>"], m.Recipients.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task MessageOverMaxMessageSizeIsRejected552()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync("[Listener]\nSocket = {SOCKET}\nSocketMode = 0666\n[Milter]\nHandler = echo\nMaxMessageSize = 16K\n");
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);
        SmtpResult big = await postfix.SendAsync("s@example.org", ["list@example.com"], Message("big", Body(2000, "x")));
        Assert.Equal(552, big.Code);
        Assert.Contains("5.3.4", big.Text, StringComparison.Ordinal);
        SmtpResult small = await postfix.SendAsync("s@example.org", ["list@example.com"], Message("small", "ok\r\n"));
        Assert.Equal(250, small.Code);
        Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_deliveryTimeout));
    }

    private sealed class TransformingHandlerFactory : IMilterHandlerFactory
    {
        public IMilterHandler Create(MilterConnectionInfo info) => new TransformingHandler();
    }

    private sealed class TransformingHandler : IMilterHandler
    {
        public MilterHandlerCapabilities Capabilities { get; } = new()
        {
            RequiredActions = MilterActions.ChangeBody | MilterActions.AddRecipient | MilterActions.DeleteRecipient | MilterActions.AddHeaders | MilterActions.ChangeHeaders,
        };

        public static string Transform(string body) => "REPLACED BODY\r\n" + body.ToUpperInvariant();

        public async ValueTask<MilterVerdict> OnEndOfMessageAsync(MilterMessageContext message, CancellationToken cancellationToken)
        {
            using var reader = new StreamReader(message.Body.OpenRead(), Encoding.ASCII);
            string body = await reader.ReadToEndAsync(cancellationToken);
            foreach (MilterRecipient r in message.Recipients)
            {
                message.DeleteRecipient(r.Address);
            }

            message.AddRecipient("<member1@example.net>");
            message.AddRecipient("<member2@example.net>");
            message.AddHeader("X-Transformed", "yes");
            message.ChangeHeader(1, "Subject", "changed");
            await message.SendProgressAsync(cancellationToken);
            message.ReplaceBody(Encoding.ASCII.GetBytes(Transform(body)));
            return MilterVerdict.Continue;
        }
    }
}
