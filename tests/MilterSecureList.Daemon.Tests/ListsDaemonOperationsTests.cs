using System.Net.Http;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Daemon.Tests;

/// <summary>
/// The real daemon with the lists handler: the Prometheus endpoint is scraped after real
/// messages, and SIGHUP applies a changed [Policy] to the next message on a connection that stays open.
/// </summary>
public sealed class ListsDaemonOperationsTests : IAsyncLifetime
{
    private const string List = "ops@lists.example.org";
    private readonly string _state = System.IO.Directory.CreateTempSubdirectory("msl-ops-").FullName;
    private string _ini = "";
    private int _metricsPort;
    private byte[] _listCertificate = [];

    public async Task InitializeAsync()
    {
        File.SetUnixFileMode(_state, (UnixFileMode)0x1ED);
        string keys = Path.Combine(_state, "keys");
        _metricsPort = ExternalTool.FreeTcpPort();
        _ini = $"[Listener]\nSocket = {{SOCKET}}\n[Milter]\nHandler = lists\n[Directory]\nPath = {_state}/lists.db\nCacheRefreshSeconds = 1\n" +
               $"[Keys]\nDirectory = {keys}\n[Notices]\nEnabled = no\n[Metrics]\nListen = 127.0.0.1:{_metricsPort}\n";
        string adminIni = Path.Combine(_state, "admin.ini");
        await File.WriteAllTextAsync(adminIni, $"[Directory]\nPath = {_state}/lists.db\n[Keys]\nDirectory = {keys}\n");
        Admin("--config", adminIni, "list", "create", List, "--owner", "owner@example.org");
        foreach (string member in new[] { "alice@example.org", "bob@example.org" })
        {
            string pem = Path.Combine(_state, member + ".pem");
            await File.WriteAllTextAsync(pem, MemberCertificate(member).ExportCertificatePem());
            Admin("--config", adminIni, "member", "add", List, member, "--cert", pem);
        }

        _listCertificate = X509Certificate2.CreateFromPem(Admin("--config", adminIni, "list", "export-cert", List)).RawData;
    }

    public Task DisposeAsync()
    {
        System.IO.Directory.Delete(_state, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task MetricsAreServedOnLoopbackAndCountWhatHappened()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(_ini);
        await using TestMta mta = await daemon.OpenSessionAsync();
        EndOfMessageResult good = await SendAsync(mta, Encrypted(), "Q1");
        Assert.Equal(MilterResponseCode.Continue, good.Final.Response);
        await mta.AbortAsync();
        EndOfMessageResult plain = await SendAsync(mta, null, "Q2");
        Assert.Equal(MilterResponseCode.ReplyCode, plain.Final.Response);

        using var http = new HttpClient();
        string text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{_metricsPort}/metrics"));
        Assert.Contains("securelist_messages_seen_total 2", text, StringComparison.Ordinal);
        Assert.Contains("securelist_lists_expanded_total 1", text, StringComparison.Ordinal);
        Assert.Contains("securelist_members_rekeyed_total 2", text, StringComparison.Ordinal);
        Assert.Contains("securelist_verdicts_total{kind=\"expanded\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("securelist_verdicts_total{kind=\"reject\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("securelist_eom_latency_seconds_count 2", text, StringComparison.Ordinal);
        Assert.Contains("securelist_spool_bytes ", text, StringComparison.Ordinal);
        Assert.Matches(@"securelist_gc_collections_total\{generation=""0""\} \d+\n", text);
        Assert.Matches(@"securelist_gc_allocated_bytes_total [1-9]\d*\n", text);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync(new Uri($"http://127.0.0.1:{_metricsPort}/other"))).StatusCode);
    }

    [Fact]
    public async Task SighupAppliesANewPolicyWithoutDroppingTheConnection()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(_ini);
        await using TestMta mta = await daemon.OpenSessionAsync();
        EndOfMessageResult before = await SendAsync(mta, null, "Q1");
        Assert.Equal(MilterResponseCode.ReplyCode, before.Final.Response); // plaintext: rejected by default
        await mta.AbortAsync();

        string ini = Path.Combine(daemon.Directory, "milter.ini");
        await File.AppendAllTextAsync(ini, "[Policy]\nPlaintext = pass\n");
        Assert.Contains("reloaded", await daemon.ReloadAsync(), StringComparison.Ordinal);
        EndOfMessageResult after = await SendAsync(mta, null, "Q2"); // same connection
        Assert.Equal(MilterResponseCode.Continue, after.Final.Response);
        Assert.Equal(["<alice@example.org>", "<bob@example.org>"], after.AddedRecipients);
        Assert.Null(after.ReplacedBody);
        Assert.False(daemon.HasExited);
    }

    [Fact]
    public async Task SighupReloadsEvenWhenTheDaemonWasStartedWithHangupsIgnored()
    {
        // nohup(1) sets SIGHUP to "ignore", which exec passes on to the daemon.
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(_ini, wrapper: ["nohup"]);
        string ini = Path.Combine(daemon.Directory, "milter.ini");
        await File.AppendAllTextAsync(ini, "[Policy]\nPlaintext = pass\n");
        Assert.Contains("reloaded", await daemon.ReloadAsync(), StringComparison.Ordinal);
        await using TestMta mta = await daemon.OpenSessionAsync();
        Assert.Equal(MilterResponseCode.Continue, (await SendAsync(mta, null, "Q3")).Final.Response);
    }

    [Fact]
    public async Task ABrokenFileOnSighupKeepsTheRunningSettings()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(_ini);
        await using TestMta mta = await daemon.OpenSessionAsync();
        string ini = Path.Combine(daemon.Directory, "milter.ini");
        await File.AppendAllTextAsync(ini, "[Policy]\nPlaintext = maybe\n");
        string answer = await daemon.ReloadAsync();
        Assert.Contains("reload refused", answer, StringComparison.Ordinal);
        Assert.Contains("[Policy] Plaintext", answer, StringComparison.Ordinal);
        EndOfMessageResult eom = await SendAsync(mta, Encrypted(), "Q3");
        Assert.Equal(MilterResponseCode.Continue, eom.Final.Response);
    }

    [Fact]
    public async Task VersionIsPrinted()
    {
        (int exit, string stdout, _) = await DaemonProcess.RunToEndAsync("--version");
        Assert.Equal(0, exit);
        Assert.Matches(@"^securelist-milter \d+\.\d+\.\d+", stdout);
    }

    private static string Admin(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = AdminCli.Run(args, output, error);
        Assert.True(exit == 0, $"securelist {string.Join(' ', args)}: exit {exit}: {error}");
        return output.ToString();
    }

    private static X509Certificate2 MemberCertificate(string address)
    {
        using RSA rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={address}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    private byte[] Encrypted()
    {
        var cms = new EnvelopedCms(new ContentInfo("Content-Type: text/plain\r\n\r\nhello\r\n"u8.ToArray()));
        cms.Encrypt(new CmsRecipient(X509CertificateLoader.LoadCertificate(_listCertificate)));
        return cms.Encode();
    }

    /// <summary>One message as Postfix sends it; <paramref name="der"/> null sends plaintext.</summary>
    private static async Task<EndOfMessageResult> SendAsync(TestMta mta, byte[]? der, string queueId)
    {
        mta.Macro(MilterCommandCode.Mail, "i", queueId);
        await mta.MailAsync("<dave@example.com>");
        await mta.RcptAsync($"<{List}>");
        if (der is null)
        {
            await mta.HeaderAsync("Content-Type", "text/plain");
        }
        else
        {
            await mta.HeaderAsync("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m");
            await mta.HeaderAsync("Content-Transfer-Encoding", "base64");
        }

        await mta.EndOfHeadersAsync();
        await mta.BodyAsync(der is null ? "hello\r\n"u8.ToArray() : Encoding.ASCII.GetBytes(Convert.ToBase64String(der, Base64FormattingOptions.InsertLineBreaks) + "\r\n"));
        mta.Macro(MilterCommandCode.EndOfMessage, "i", queueId);
        return await mta.EndOfMessageAsync();
    }
}
