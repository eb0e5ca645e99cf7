using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Testing;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// Through a real Postfix (smtpd → securelist-milter with Handlers = gateway → smtp-sink): what leaves for a
/// correspondent is encrypted and signed (read by openssl), a recipient without a certificate under
/// <c>required</c> is refused at RCPT while the other still gets the mail, and tampered inbound mail is refused 550.
/// </summary>
public sealed class GatewayPostfixTests : IDisposable
{
    private static readonly TimeSpan s_delivery = TimeSpan.FromSeconds(60);
    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    private Task<DaemonProcess> StartDaemonAsync() => DaemonProcess.StartAsync(
        $"[Listener]\nSocket = {{SOCKET}}\nSocketMode = 0666\n[Milter]\nHandlers = gateway\n[Directory]\nPath = {_world.Temp.File("db/lists.db")}\n" +
        $"[Keys]\nDirectory = {_world.Temp.File("keys")}\n[Notices]\nEnabled = no\n[Gateway]\nAuthservId = {GatewayWorld.AuthservId}\nTrustAnchors = {_world.CaFile}\n");

    [Fact]
    public async Task OutboundUnderRequiredNothingLeavesInPlaintextAndTheMissingRecipientIsRefusedAtRcpt()
    {
        _world.Know(_world.Bob);
        _world.Store.SetUserPolicy("alice@gw.example", EncryptPolicy.Required, null, null);
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);

        string data = _world.Write(GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example", "the secret plan"));
        (int _, string stdout, string _) = await postfix.SwaksAsync("--from", "alice@gw.example", "--to", "bob@partner.example,stranger@nowhere.example", "--data", data);
        Assert.Contains("550 5.7.1 <stranger@nowhere.example>", stdout, StringComparison.Ordinal);

        SinkMessage delivered = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Equal(["<bob@partner.example>"], delivered.Recipients);
        Assert.DoesNotContain("secret plan", delivered.Headers + delivered.Body, StringComparison.Ordinal);
        string file = _world.Write(Encoding.ASCII.GetBytes(delivered.Headers + "\n" + delivered.Body));
        string decrypted = _world.Temp.File("dec.eml");
        OpensslTool.Run("cms", "-decrypt", "-in", file, "-recip", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile, "-out", decrypted);
        string content = _world.Temp.File("content.txt");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-verify", "-in", decrypted, "-CAfile", _world.CaFile, "-out", content);
        Assert.True(code == 0, error);
        Assert.Contains("the secret plan", File.ReadAllText(content), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InboundTamperedMailIsRefusedAndGoodMailIsDeliveredWithAuthenticationResults()
    {
        await using DaemonProcess daemon = await StartDaemonAsync();
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);
        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nPay 100 EUR to account 1\r\n"));
        byte[] signed = _world.OpensslMessage("From: bob@partner.example\r\nTo: alice@gw.example\r\nSubject: invoice\r\nAuthentication-Results: gw.example; smime=pass body.smime-identifier=forged@evil.example\r\n",
            "cms", "-sign", "-in", entity, "-signer", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile);
        byte[] tampered = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(signed).Replace("account 1", "account 9", StringComparison.Ordinal));

        SmtpResult refused = await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], tampered);
        Assert.Equal(550, refused.Code);
        Assert.Contains("5.7.1 S/MIME signature refused", refused.Text, StringComparison.Ordinal);

        SmtpResult accepted = await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], signed);
        Assert.Equal(250, accepted.Code);
        SinkMessage delivered = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Contains("Authentication-Results: gw.example; smime=pass body.smime-identifier=bob@partner.example", delivered.Headers, StringComparison.Ordinal);
        Assert.DoesNotContain("forged@evil.example", delivered.Headers, StringComparison.Ordinal);
        Assert.Contains("account 1", delivered.Body, StringComparison.Ordinal);
    }
}
