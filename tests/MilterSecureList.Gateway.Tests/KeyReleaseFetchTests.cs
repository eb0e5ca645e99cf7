using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Storage;
using MilterSecureList.KeyRelease;
using MilterSecureList.Testing;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// A post of a key-release list (docs/key-release.md) to gateway users: the gateway asks the real securelist-keyd
/// (the built binary, TLS on loopback, the same SQLite directory) for each user's key, signed with the user's own key,
/// and delivers plain mail; a refusal leaves the post encrypted with a header saying so; a key server that cannot be
/// reached tempfails; a key server the operator did not name is never contacted.
/// </summary>
public sealed class KeyReleaseFetchTests : IAsyncLifetime
{
    private const string List = "crypto@gw.example";
    private static readonly TimeSpan s_delivery = TimeSpan.FromSeconds(60);

    private readonly GatewayWorld _world = new();
    private KeyServerFiles _keyd = null!;
    private KeyServerProcess? _server;
    private Party _erin = null!;

    public async Task InitializeAsync()
    {
        string dir = _world.Temp.File("keyd");
        System.IO.Directory.CreateDirectory(dir);
        _keyd = new KeyServerFiles(dir);
        _erin = _world.Issue("erin@gw.example", ECDsa.Create(ECCurve.NamedCurves.nistP256));
        _world.Administration.Import(_erin.Address, _erin.CertFile, _erin.KeyFile, null, false, null, null, null).Dispose();
        _world.CreateList(List, _world.Alice, _erin);
        _world.AdminCli("list", "set", List, "--option", "release=on");
        string ini = Path.Combine(dir, "keyd.ini");
        File.WriteAllText(ini, _keyd.KeydIni($"Provider = sqlite\nPath = {_world.Temp.File("db/lists.db")}"));
        _server = await KeyServerProcess.StartAsync(ini, _keyd.Port);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _world.Dispose();
    }

    private GatewayOptions FetchingOptions(params string[] keyServers) =>
        new() { AuthservId = GatewayWorld.AuthservId, KeyServers = [.. keyServers.Select(u => u.TrimEnd('/'))] };

    /// <summary>The gateway with the real HTTPS fetcher, trusting the key server's TLS certificate.</summary>
    private (GatewayProcessor Processor, ReleaseFetcher Fetcher) Gateway(GatewayOptions options)
    {
        var trust = new X509Certificate2Collection();
        trust.ImportFromPemFile(_keyd.TlsCertificate);
        var fetcher = new ReleaseFetcher(new KeyReleaseClient(trust, null, TimeSpan.FromSeconds(10)), TimeProvider.System);
        return (new GatewayProcessor(_world.Directory, options, _world.Anchors, TimeProvider.System, _world.Log) { KeyRelease = fetcher }, fetcher);
    }

    /// <summary>
    /// What the list's milter delivers for a post openssl encrypted to the list certificate: the key deposited with the
    /// key server (mutual TLS, as the milter does), only the release entry in the message.
    /// </summary>
    private async Task<(byte[] Message, KeyReleaseEntry Entry)> ReleasePostAsync(string text, string extraHeaders = "")
    {
        using SqlDirectoryStore store = SqlDirectoryStore.Open(new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = _world.Temp.File("db/lists.db") }, TimeProvider.System);
        var listKeys = new ListDirectory(store, _world.Keys, TimeProvider.System).GetListKeys(List).Select(p => new ListKey(p.Certificate, p.PrivateKey, ownsKey: false)).ToList();
        string listPem = _world.Write(Encoding.ASCII.GetBytes(listKeys[0].Certificate.ExportCertificatePem()), "list.pem");
        string der = _world.Temp.File($"{Guid.NewGuid():N}.der");
        OpensslTool.Run("cms", "-encrypt", "-aes-256-cbc", "-in", _world.Write(Encoding.ASCII.GetBytes($"Content-Type: text/plain\r\n\r\n{text}\r\n")), "-outform", "DER", "-out", der, listPem);

        var policy = new ReleasePolicy(List, ReleaseMode.Rekey, "bob@partner.example", DateTimeOffset.UtcNow.AddDays(1));
        using X509Certificate2 release = X509CertificateLoader.LoadCertificateFromFile(_keyd.ReleaseCertificate);
        KeyReleaseSeal seal = KeyReleaseSealer.Seal(File.ReadAllBytes(der), listKeys, CmsRecipient.FromCertificate(release), _keyd.Url, policy, KeyReleaseEntry.NewMessageId());
        var trust = new X509Certificate2Collection();
        trust.ImportFromPemFile(_keyd.TlsCertificate);
        using (var milter = new KeyReleaseClient(trust, X509Certificate2.CreateFromPemFile(_keyd.ClientCertificate, _keyd.ClientKey), TimeSpan.FromSeconds(10)))
        {
            await milter.DepositAsync(new Uri(_keyd.Url), KeyReleaseDeposit.From(seal), CancellationToken.None);
        }

        byte[] message = Encoding.ASCII.GetBytes(
            $"From: bob@partner.example\r\nTo: {List}\r\nSubject: release post\r\nMessage-ID: <{Guid.NewGuid():N}@partner.example>\r\n" +
            $"X-SecureList-Release: {seal.Entry.MessageIdHex}\r\n{extraHeaders}MIME-Version: 1.0\r\n" +
            "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
            Convert.ToBase64String(seal.ContentInfo, Base64FormattingOptions.InsertLineBreaks) + "\r\n");
        return (message, seal.Entry);
    }

    public static TheoryData<string> Users => ["alice@gw.example", "erin@gw.example"];

    [Theory]
    [MemberData(nameof(Users))]
    public async Task TheGatewayFetchesTheKeyForItsUserAndDeliversPlainMail(string user)
    {
        (byte[] message, KeyReleaseEntry entry) = await ReleasePostAsync("the board meets on friday");
        (GatewayProcessor gateway, ReleaseFetcher fetcher) = Gateway(FetchingOptions(_keyd.Url));
        using (fetcher)
        {
            (GatewayResult result, byte[] output, _) = _world.Run("bob@partner.example", [user], message, gateway);
            Assert.Equal(GatewayVerdict.Continue, result.Verdict);
            Assert.Equal($"key released by the key server, decrypted for {user}", result.Reason);
            string delivered = Encoding.ASCII.GetString(output);
            Assert.Contains("the board meets on friday", delivered, StringComparison.Ordinal);
            Assert.DoesNotContain("pkcs7-mime", delivered, StringComparison.Ordinal);
            Assert.Contains(_world.Log.Lines, l => l.Contains($"gateway audit: key fetched for {user} release={entry.MessageIdHex}", StringComparison.Ordinal));
        }

        // The key server recorded the release for that user (securelist release status reads its database).
        Assert.Contains(user, _world.AdminCli("release", "status", entry.MessageIdHex), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARevokedReleaseIsDeliveredStillEncryptedWithAHeaderSayingSoAndAForgedOneIsReplaced()
    {
        (byte[] message, KeyReleaseEntry entry) = await ReleasePostAsync("not for you any more",
            "X-SecureList-Release-Refused: nobody; forged by the sender\r\n");
        _world.AdminCli("release", "revoke", entry.MessageIdHex, "--member", "alice@gw.example");
        (GatewayProcessor gateway, ReleaseFetcher fetcher) = Gateway(FetchingOptions(_keyd.Url));
        using (fetcher)
        {
            (GatewayResult result, byte[] output, _) = _world.Run("bob@partner.example", ["alice@gw.example"], message, gateway);
            Assert.Equal(GatewayVerdict.Continue, result.Verdict);
            Assert.Contains($"left encrypted: the key server refused the key to release {entry.MessageIdHex} for alice@gw.example", result.Reason, StringComparison.Ordinal);
            string delivered = Encoding.ASCII.GetString(output);
            Assert.StartsWith($"X-SecureList-Release-Refused: alice@gw.example; release={entry.MessageIdHex}; key-server={_keyd.Url};", delivered, StringComparison.Ordinal);
            Assert.DoesNotContain("forged by the sender", delivered, StringComparison.Ordinal);
            Assert.Contains("smime-type=enveloped-data", delivered, StringComparison.Ordinal);
            Assert.DoesNotContain("not for you", delivered, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task WhenOneOfTwoUsersIsRefusedNeitherGetsPlainMail()
    {
        (byte[] message, KeyReleaseEntry entry) = await ReleasePostAsync("one body for both");
        _world.AdminCli("release", "revoke", entry.MessageIdHex, "--member", "erin@gw.example");
        (GatewayProcessor gateway, ReleaseFetcher fetcher) = Gateway(FetchingOptions(_keyd.Url));
        using (fetcher)
        {
            (GatewayResult result, byte[] output, _) = _world.Run("bob@partner.example", ["alice@gw.example", "erin@gw.example"], message, gateway);
            Assert.Contains("refused the key", result.Reason, StringComparison.Ordinal);
            Assert.DoesNotContain("one body for both", Encoding.ASCII.GetString(output), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AKeyServerThatCannotBeReachedTempfailsThePost()
    {
        (byte[] message, _) = await ReleasePostAsync("try again later");
        await _server!.DisposeAsync();
        _server = null;
        (GatewayProcessor gateway, ReleaseFetcher fetcher) = Gateway(FetchingOptions(_keyd.Url));
        using (fetcher)
        {
            (GatewayResult result, _, _) = _world.Run("bob@partner.example", ["alice@gw.example"], message, gateway);
            Assert.Equal(GatewayVerdict.Tempfail, result.Verdict);
            Assert.Equal((451, "4.3.0"), (result.Reply!.Code, result.Reply.EnhancedCode));
            Assert.Contains("unreachable", result.Reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AKeyServerWhoseTlsCertificateIsNotTheTrustedOneIsUnavailableNotAsked()
    {
        (byte[] message, _) = await ReleasePostAsync("wrong server");
        var trust = new X509Certificate2Collection { X509CertificateLoader.LoadCertificateFromFile(_world.Alice.CertFile) };
        using var fetcher = new ReleaseFetcher(new KeyReleaseClient(trust, null, TimeSpan.FromSeconds(10)), TimeProvider.System);
        var gateway = new GatewayProcessor(_world.Directory, FetchingOptions(_keyd.Url), _world.Anchors, TimeProvider.System, _world.Log) { KeyRelease = fetcher };
        (GatewayResult result, _, _) = _world.Run("bob@partner.example", ["alice@gw.example"], message, gateway);
        Assert.Equal(GatewayVerdict.Tempfail, result.Verdict);
    }

    [Fact]
    public async Task GatewayCheckFetchesAsTheDaemonDoesWithTheSameSettings()
    {
        (byte[] message, KeyReleaseEntry entry) = await ReleasePostAsync("checked offline");
        File.AppendAllText(_world.Temp.File("admin.ini"),
            $"[Gateway]\nAuthservId = {GatewayWorld.AuthservId}\nTrustAnchors = {_world.CaFile}\nKeyServers = {_keyd.Url}\n[KeyRelease]\nTrustedCertificate = {_keyd.TlsCertificate}\n");
        string output = _world.Temp.File("checked.eml");
        string report = _world.AdminCli("gateway", "check", "--from", "bob@partner.example", "--rcpt", "alice@gw.example", "--in", _world.Write(message), "--out", output);
        Assert.StartsWith("250 2.0.0 continue", report, StringComparison.Ordinal);
        Assert.Contains("verdict: continue (key released by the key server, decrypted for alice@gw.example)", report, StringComparison.Ordinal);
        Assert.Contains($"log: offline: gateway audit: key fetched for alice@gw.example release={entry.MessageIdHex}", report, StringComparison.Ordinal);
        Assert.Contains("checked offline", File.ReadAllText(output), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ThroughPostfixTheUserGetsPlainMailAndAnUnreachableKeyServerIs451()
    {
        (byte[] message, _) = await ReleasePostAsync("delivered through postfix");
        // The first fetch pays for the TLS handshake and both processes' first-call compilation: on a busy 2-core host
        // that took more than 5 s. The unreachable case below is refused at connect, so a long timeout costs it nothing.
        string extra = $"KeyServers = {_keyd.Url}\n[KeyRelease]\nTrustedCertificate = {_keyd.TlsCertificate}\nTimeout = 30s\n";
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(_world.DaemonIni("gateway", extra));
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);

        Assert.Equal(250, (await postfix.SendAsync("bob@partner.example", ["erin@gw.example"], message)).Code);
        SinkMessage delivered = Assert.Single(await postfix.WaitForSinkMessagesAsync(1, s_delivery));
        Assert.Contains("delivered through postfix", delivered.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("pkcs7-mime", delivered.Headers, StringComparison.Ordinal);

        (byte[] second, _) = await ReleasePostAsync("held back");
        await _server!.DisposeAsync();
        _server = null;
        SmtpResult deferred = await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], second);
        Assert.Equal(451, deferred.Code);
        Assert.Contains("4.3.0", deferred.Text, StringComparison.Ordinal);
    }
}

/// <summary>Which key servers the gateway asks: only those of [Gateway] KeyServers, whatever URL a post names.</summary>
public sealed class KeyServerChoiceTests : IDisposable
{
    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    /// <summary>Counts calls: the point is that it is never called (a fake, in a unit test).</summary>
    private sealed class CountingFetcher : IKeyReleaseFetcher
    {
        public int Calls { get; private set; }

        public KeyReleaseAnswer Fetch(KeyReleaseEntry entry, string member, X509Certificate2 certificate, AsymmetricAlgorithm key)
        {
            Calls++;
            return new KeyReleaseAnswer(KeyReleaseOutcome.Unavailable, null, "not expected");
        }
    }

    public static TheoryData<string, string> Servers => new()
    {
        { "https://keys.gw.example:8443/", "" },                              // automatic fetch off
        { "https://evil.example/", "https://keys.gw.example:8443" },          // another host
        { "https://keys.gw.example:9443/", "https://keys.gw.example:8443" },   // another port
        { "http://keys.gw.example:8443/", "https://keys.gw.example:8443" },    // not TLS
        { "https://user@keys.gw.example:8443/", "https://keys.gw.example:8443" },
    };

    [Theory]
    [MemberData(nameof(Servers))]
    public void APostNamingAnotherKeyServerStaysEncryptedAndNothingIsAsked(string named, string allowed)
    {
        var problems = new List<string>();
        GatewayOptions options = GatewayOptions.Bind(k => k switch { "KeyServers" => allowed, "AuthservId" => GatewayWorld.AuthservId, _ => null }, problems);
        Assert.Empty(problems);
        var fetcher = new CountingFetcher();
        var gateway = new GatewayProcessor(_world.Directory, options, _world.Anchors, TimeProvider.System, _world.Log) { KeyRelease = fetcher };

        // A post sealed as a release list's milter does (carol's key standing in for the list key, bob's certificate
        // for the key server's release certificate); only the URL in it matters here.
        var policy = new ReleasePolicy("crypto@gw.example", ReleaseMode.Rekey, "bob@partner.example", DateTimeOffset.UtcNow.AddDays(1));
        byte[] cms = CmsEncryptor.Encrypt("Content-Type: text/plain\r\n\r\nx\r\n"u8, [CmsRecipient.FromCertificate(_world.Carol.Certificate)]);
        using var listKey = new ListKey(_world.Carol.Certificate, _world.Carol.Key, ownsKey: false);
        byte[] withEntry = KeyReleaseSealer.Seal(cms, [listKey], CmsRecipient.FromCertificate(_world.Bob.Certificate), named, policy, KeyReleaseEntry.NewMessageId()).ContentInfo;
        byte[] message = Encoding.ASCII.GetBytes("From: bob@partner.example\r\nTo: alice@gw.example\r\nSubject: r\r\nMIME-Version: 1.0\r\n" +
            "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n" + Convert.ToBase64String(withEntry) + "\r\n");

        (GatewayResult result, _, _) = _world.Run("bob@partner.example", ["alice@gw.example"], message, gateway);
        Assert.Equal(0, fetcher.Calls);
        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.Contains("key-release post of a key server the gateway does not fetch from", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyServersMustBeHttpsUrls()
    {
        var problems = new List<string>();
        GatewayOptions.Bind(k => k == "KeyServers" ? "https://keys.example:8443/, http://plain.example/" : null, problems);
        Assert.Equal("[Gateway] KeyServers: 'http://plain.example/' is not an https URL such as https://keys.example.org:8443/", Assert.Single(problems));
    }
}
