using System.Buffers.Binary;
using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// The real securelist-milter with [Milter] Handlers = gateway (and gateway, lists), driven over its socket as
/// Postfix drives it; the modifications are applied to the message and the result is read by openssl.
/// </summary>
public sealed class GatewayDaemonTests : IDisposable
{
    private const string List = "crypto@lists.gw.example";
    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    private string Ini(string handlers) => _world.DaemonIni(handlers);

    [Fact]
    public async Task OutboundThroughTheDaemonIsSignedAndEncryptedAndAMissingRequiredCertificateIsRefusedAtRcpt()
    {
        _world.Know(_world.Bob);
        _world.Store.SetUserPolicy("alice@gw.example", Directory.Gateway.EncryptPolicy.Required, null, null);
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(Ini("gateway"));
        await using TestMta mta = await daemon.OpenSessionAsync();

        mta.Macro(MilterCommandCode.Mail, "i", "GW1");
        await mta.MailAsync("<alice@gw.example>");
        Assert.Equal(MilterResponseCode.Continue, (await mta.RcptAsync("<bob@partner.example>"))!.Response);
        MilterReply refused = (await mta.RcptAsync("<stranger@nowhere.example>"))!;
        Assert.Equal(MilterResponseCode.ReplyCode, refused.Response);
        Assert.StartsWith("550 5.7.1 <stranger@nowhere.example>:", Encoding.ASCII.GetString(refused.Payload), StringComparison.Ordinal);

        byte[] message = GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example", "through the daemon");
        byte[] delivered = await SendMessageAsync(mta, message, "GW1");
        Assert.DoesNotContain("through the daemon", Encoding.ASCII.GetString(delivered), StringComparison.Ordinal);

        Assert.Contains("through the daemon", _world.DecryptAndVerify(delivered, _world.Bob), StringComparison.Ordinal);
        await daemon.WaitForOutputAsync("gateway audit: signed for alice@gw.example", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task InboundTamperedMailIsRefusedWith550AtEndOfMessage()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(Ini("gateway"));
        await using TestMta mta = await daemon.OpenSessionAsync();
        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nPay 100 EUR\r\n"));
        byte[] signed = _world.OpensslMessage("From: bob@partner.example\nTo: alice@gw.example\nSubject: x\n", "cms", "-sign", "-in", entity, "-signer", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile);
        byte[] tampered = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(signed).Replace("Pay 100", "Pay 900", StringComparison.Ordinal));

        mta.Macro(MilterCommandCode.Mail, "i", "GW2");
        await mta.MailAsync("<bob@partner.example>");
        await mta.RcptAsync("<alice@gw.example>");
        MilterReply split = (await mta.RcptAsync("<other@elsewhere.example>"))!;
        Assert.StartsWith("452 4.5.3", Encoding.ASCII.GetString(split.Payload), StringComparison.Ordinal);
        EndOfMessageResult eom = await SendBodyAsync(mta, tampered, "GW2");
        Assert.Equal(MilterResponseCode.ReplyCode, eom.Final.Response);
        Assert.StartsWith("550 5.7.1 S/MIME signature refused: the signature does not match the content", Encoding.ASCII.GetString(eom.Final.Payload), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GatewayThenListsEncryptsAUsersPlainPostToTheListAndReKeysItForTheMembers()
    {
        _world.CreateList(List, _world.Bob, _world.Carol);

        await using DaemonProcess daemon = await DaemonProcess.StartAsync(Ini("gateway, lists"));
        await using TestMta mta = await daemon.OpenSessionAsync();
        mta.Macro(MilterCommandCode.Mail, "i", "GW3");
        await mta.MailAsync("<alice@gw.example>");
        Assert.Equal(MilterResponseCode.Continue, (await mta.RcptAsync($"<{List}>"))!.Response);
        byte[] message = GatewayWorld.PlainMessage("alice@gw.example", List, "a plain post to an encrypted list");
        (List<GatewayHeader> headers, byte[] body) = GatewayMessages.Split(message);
        EndOfMessageResult eom = await SendHeadersAndBodyAsync(mta, headers, body, "GW3");

        Assert.Equal(MilterResponseCode.Continue, eom.Final.Response);
        Assert.Equal([$"<{List}>"], eom.DeletedRecipients);
        Assert.Equal(["<bob@partner.example>", "<carol@partner.example>"], eom.AddedRecipients);
        byte[] delivered = Rebuild(headers, body, eom);
        foreach (Party member in new[] { _world.Bob, _world.Carol })
        {
            Assert.Contains("a plain post to an encrypted list", _world.DecryptAndVerify(delivered, member), StringComparison.Ordinal);
        }

        // A sender who is not a gateway user still meets the list's plaintext policy.
        await mta.AbortAsync();
        EndOfMessageResult refused = await PlainPostAsync(mta, "GW4");
        Assert.StartsWith("550 5.7.1", Encoding.ASCII.GetString(refused.Final.Payload), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SighupAppliesAChangedGatewayPolicyAndTheListPolicyOnTheSameConnection()
    {
        _world.CreateList(List, _world.Bob, _world.Carol);
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(Ini("gateway, lists"));
        await using TestMta mta = await daemon.OpenSessionAsync();

        // Before: opportunistic by default, so a recipient without a certificate is accepted; the list refuses plaintext.
        mta.Macro(MilterCommandCode.Mail, "i", "GW5");
        await mta.MailAsync("<alice@gw.example>");
        Assert.Equal(MilterResponseCode.Continue, (await mta.RcptAsync("<stranger@nowhere.example>"))!.Response);
        await mta.AbortAsync();
        Assert.StartsWith("550 5.7.1", Encoding.ASCII.GetString((await PlainPostAsync(mta, "GW6")).Final.Payload), StringComparison.Ordinal);
        await mta.AbortAsync();

        // The [Gateway] section is the file's last: the appended key lands in it, then a [Policy] section follows.
        string ini = Path.Combine(daemon.Directory, "milter.ini");
        await File.AppendAllTextAsync(ini, "Encrypt = required\n[Policy]\nPlaintext = pass\n");
        Assert.Contains("reloaded ", await daemon.ReloadAsync(), StringComparison.Ordinal);

        mta.Macro(MilterCommandCode.Mail, "i", "GW7");
        await mta.MailAsync("<alice@gw.example>");
        MilterReply refused = (await mta.RcptAsync("<stranger@nowhere.example>"))!;
        Assert.StartsWith("550 5.7.1 <stranger@nowhere.example>: encryption to this recipient is required", Encoding.ASCII.GetString(refused.Payload), StringComparison.Ordinal);
        await mta.AbortAsync();
        EndOfMessageResult passed = await PlainPostAsync(mta, "GW8");
        Assert.Equal(MilterResponseCode.Continue, passed.Final.Response);
        Assert.Equal(["<bob@partner.example>", "<carol@partner.example>"], passed.AddedRecipients);
        Assert.False(daemon.HasExited);
    }

    /// <summary>bob (not a gateway user) posts plain text to the list.</summary>
    private static async Task<EndOfMessageResult> PlainPostAsync(TestMta mta, string queueId)
    {
        mta.Macro(MilterCommandCode.Mail, "i", queueId);
        await mta.MailAsync("<bob@partner.example>");
        await mta.RcptAsync($"<{List}>");
        (List<GatewayHeader> headers, byte[] body) = GatewayMessages.Split(GatewayWorld.PlainMessage("bob@partner.example", List, "plain"));
        return await SendHeadersAndBodyAsync(mta, headers, body, queueId);
    }

    private static async Task<byte[]> SendMessageAsync(TestMta mta, byte[] message, string queueId)
    {
        (List<GatewayHeader> headers, byte[] body) = GatewayMessages.Split(message);
        EndOfMessageResult eom = await SendHeadersAndBodyAsync(mta, headers, body, queueId);
        Assert.Equal(MilterResponseCode.Continue, eom.Final.Response);
        return Rebuild(headers, body, eom);
    }

    private static Task<EndOfMessageResult> SendBodyAsync(TestMta mta, byte[] message, string queueId)
    {
        (List<GatewayHeader> headers, byte[] body) = GatewayMessages.Split(message);
        return SendHeadersAndBodyAsync(mta, headers, body, queueId);
    }

    private static async Task<EndOfMessageResult> SendHeadersAndBodyAsync(TestMta mta, List<GatewayHeader> headers, byte[] body, string queueId)
    {
        foreach (GatewayHeader header in headers)
        {
            await mta.HeaderAsync(header.Name, header.Value.Replace("\r\n", "\n", StringComparison.Ordinal));
        }

        await mta.EndOfHeadersAsync();
        await mta.BodyAsync(body);
        mta.Macro(MilterCommandCode.EndOfMessage, "i", queueId);
        return await mta.EndOfMessageAsync();
    }

    /// <summary>Applies the milter's header and body modifications to the message, as Postfix's cleanup does.</summary>
    private static byte[] Rebuild(List<GatewayHeader> original, byte[] body, EndOfMessageResult eom)
    {
        var headers = original.Select(h => (h.Name, Value: (string?)h.Value)).ToList();
        foreach (MilterReply m in eom.Modifications)
        {
            switch (m.Response)
            {
                case MilterResponseCode.ChangeHeader:
                    uint index = BinaryPrimitives.ReadUInt32BigEndian(m.Payload);
                    string[] change = Encoding.UTF8.GetString(m.Payload.AsSpan(4)).TrimEnd('\0').Split('\0');
                    int seen = 0;
                    for (int i = 0; i < headers.Count; i++)
                    {
                        if (string.Equals(headers[i].Name, change[0], StringComparison.OrdinalIgnoreCase) && ++seen == index)
                        {
                            headers[i] = (headers[i].Name, change.Length > 1 && change[1].Length > 0 ? change[1] : null);
                            break;
                        }
                    }

                    break;
                case MilterResponseCode.InsertHeader:
                    string[] insert = Encoding.UTF8.GetString(m.Payload.AsSpan(4)).TrimEnd('\0').Split('\0');
                    headers.Insert((int)BinaryPrimitives.ReadUInt32BigEndian(m.Payload), (insert[0], insert[1]));
                    break;
                case MilterResponseCode.AddHeader:
                    headers.Add((m.Strings[0], m.Strings[1]));
                    break;
            }
        }

        var output = new StringBuilder();
        foreach ((string name, string? value) in headers.Where(h => h.Value is not null))
        {
            output.Append(name).Append(": ").Append(value!.Replace("\n", "\r\n", StringComparison.Ordinal)).Append("\r\n");
        }

        output.Append("\r\n");
        return [.. Encoding.UTF8.GetBytes(output.ToString()), .. eom.ReplacedBody ?? body];
    }
}
