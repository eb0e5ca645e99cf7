using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>Receipts (docs/key-release.md §7): the key server mails them through smtp-sink as the local MTA; openssl
/// verifies the signature against the release certificate.</summary>
public sealed class ReceiptTests : IAsyncLifetime
{
    private const string Sender = "sender@example.test";
    private readonly ReleaseWorld _world = new();
    // Outside the world's 0700 root: smtp-sink runs as postfix and must reach its dump directory.
    private readonly string _sinkDirectory = System.IO.Directory.CreateTempSubdirectory("keyrel-sink-").FullName;
    private SmtpSink _sink = null!;
    private TestMember _alice = null!;
    private TestMember _bob = null!;
    private TestMember _carol = null!;

    public async Task InitializeAsync()
    {
        _alice = _world.AddMember("alice@example.test");
        _bob = _world.AddMember("bob@example.test");
        _carol = _world.AddMember("carol@example.test");
        _sink = await SmtpSink.StartAsync(_sinkDirectory);
        _world.AppendConfig($"""
            [Notices]
            SmtpServer = 127.0.0.1:{_sink.Port}
            From = keyd@lists.test
            """);
        await _world.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _world.StopAsync();
        await _sink.DisposeAsync();
        await _world.DisposeAsync();
        System.IO.Directory.Delete(_sinkDirectory, recursive: true);
    }

    private async Task<KeyReleaseEntry> PostAsync(string receipts, string sender = Sender)
    {
        _world.Admin.SetList(ReleaseWorld.List, null, null, null, [$"receipts={receipts}"]);
        // The key server's directory cache refreshes every second: wait until the key server sees the option.
        await Poll.UntilAsync(() => ReceiptsOption() == receipts, "the key server to see receipts=" + receipts);
        KeyReleaseSeal seal = await _world.SealAndDepositAsync(await _world.OpensslPostAsync("receipt test\r\n"), sender: sender);
        return seal.Entry;
    }

    private string? ReceiptsOption() =>
        _world.Host!.Service.Directory.TryGetList(ReleaseWorld.List, out Directory.MailingList l)
            ? l.GetOption(Directory.ListOptionKeys.Receipts) : null;

    private async Task ReleaseAsync(KeyReleaseEntry entry, TestMember member)
    {
        using KeyReleaseClient http = _world.ReaderHttp();
        Assert.NotNull(await http.ReleaseAsync(_world.Url, ReleaseWorld.SignedRequest(entry, member.Address, member.Certificate, member.Key), CancellationToken.None));
    }

    private Task<SinkMessage> ReceiptForAsync(TestMember member) =>
        Poll.ForAsync(() => _sink.ReadMessages().FirstOrDefault(m => m.Body.Contains("Member: " + member.Address, StringComparison.Ordinal)),
            "a receipt naming " + member.Address);

    private async Task<(int Code, string Output)> OpensslVerifyAsync(SinkMessage message)
    {
        string file = Path.Combine(_world.Root, $"receipt-{Guid.NewGuid():N}.eml");
        File.WriteAllText(file, message.Headers + "\n" + message.Body);
        (int code, string output, string error) = await ExternalTool.RunAsync("openssl",
            ["smime", "-verify", "-in", file, "-CAfile", _world.ReleaseCertificateFile]);
        return (code, output + error);
    }

    [Fact]
    public async Task TheFirstReleaseToAMemberMailsTheSenderOneSignedReceiptAndTheSecondNone()
    {
        KeyReleaseEntry entry = await PostAsync("sender");
        await ReleaseAsync(entry, _alice);
        SinkMessage receipt = await ReceiptForAsync(_alice);
        Assert.Equal([$"<{Sender}>"], receipt.Recipients);
        Assert.Equal("<>", receipt.MailFrom);
        Assert.Contains("Auto-Submitted: auto-generated", receipt.Headers, StringComparison.Ordinal);
        Assert.Contains("multipart/signed", receipt.Headers, StringComparison.Ordinal);

        (int code, string output) = await OpensslVerifyAsync(receipt);
        Assert.True(code == 0, output);
        Assert.Contains("Verification successful", output, StringComparison.Ordinal);
        Assert.Contains("Member: " + _alice.Address, output, StringComparison.Ordinal);
        Assert.Contains("Release message id: " + entry.MessageIdHex, output, StringComparison.Ordinal);
        Assert.Contains("List: " + ReleaseWorld.List, output, StringComparison.Ordinal);

        // A tampered receipt does not verify.
        SinkMessage forged = receipt with { Body = receipt.Body.Replace(_alice.Address, _bob.Address, StringComparison.Ordinal) };
        Assert.NotEqual(0, (await OpensslVerifyAsync(forged)).Code);

        // Alice again: no receipt. Bob afterwards: his receipt comes, and the sink holds exactly two.
        await ReleaseAsync(entry, _alice);
        await ReleaseAsync(entry, _bob);
        await ReceiptForAsync(_bob);
        Assert.Equal(2, _sink.ReadMessages().Count);
        Assert.Single(_sink.ReadMessages(), m => m.Body.Contains("Member: " + _alice.Address, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ReceiptsOffSendsNoneAndOwnerGoesToTheOwner()
    {
        KeyReleaseEntry quiet = await PostAsync("off");
        await ReleaseAsync(quiet, _alice);

        KeyReleaseEntry owned = await PostAsync("owner");
        await ReleaseAsync(owned, _carol);
        SinkMessage receipt = await ReceiptForAsync(_carol);
        Assert.Equal(["<owner@lists.test>"], receipt.Recipients);
        Assert.Contains(owned.MessageIdHex, receipt.Body, StringComparison.Ordinal);

        // The off-list release came first on the same queue: had it sent a receipt, it would be here by now.
        Assert.Single(_sink.ReadMessages());
    }

    [Fact]
    public async Task AnInjectedSenderGetsNoReceiptAndTheReleaseStillWorks()
    {
        // The policy's sender is the post's envelope sender: an outsider chooses it. SMTP and header injection make
        // an address MimeKit refuses; the receipt is dropped (logged), the release answers as always.
        KeyReleaseEntry evil = await PostAsync("sender", "evil@example.test>\r\nRCPT TO:<victim@example.test");
        await ReleaseAsync(evil, _alice);

        KeyReleaseEntry good = await PostAsync("sender");
        await ReleaseAsync(good, _bob);
        SinkMessage receipt = await ReceiptForAsync(_bob);
        Assert.Contains(good.MessageIdHex, receipt.Body, StringComparison.Ordinal);
        Assert.Single(_sink.ReadMessages());
        Assert.DoesNotContain(_sink.ReadMessages(), m => m.Recipients.Any(r => r.Contains("victim", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("SmtpServer = no-port", "[Notices] SmtpServer: 'no-port' is not HOST:PORT")]
    [InlineData("From = not an address<", "[Notices] From: 'not an address<' is not a mail address")]
    [InlineData("Enabled = maybe", "[Notices] Enabled: 'maybe' is not one of: yes, no")]
    [InlineData("Smtp = 127.0.0.1:25", "[Notices] Smtp")]
    public void ABadNoticesKeyIsOneConfigurationLine(string line, string problem)
    {
        string file = Path.Combine(_world.Root, $"bad-{Guid.NewGuid():N}.ini");
        // The [Notices] section is last in the world's keyd.ini: the bad line replaces a key of the same name there.
        string key = line[..line.IndexOf(' ', StringComparison.Ordinal)];
        File.WriteAllLines(file, [.. File.ReadAllLines(_world.ConfigFile).Where(l => !l.StartsWith(key + " =", StringComparison.Ordinal)), line]);
        var e = Assert.Throws<MilterSecureList.Configuration.ConfigurationException>(() => KeyServer.KeyServerConfiguration.Load(file));
        Assert.StartsWith(file + ":", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }
}
