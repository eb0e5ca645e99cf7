using MilterSecureList.Admin;
using MilterSecureList.Admin.Commands;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Mime;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary><c>securelist release fetch|status|revoke</c> against the key server over TLS; openssl sends and reads S/MIME files.</summary>
public sealed class ReleaseCliTests : IAsyncLifetime
{
    private readonly ReleaseWorld _world = new();
    private TestMember _alice = null!;
    private string _config = "";

    public async Task InitializeAsync()
    {
        _alice = _world.AddMember("alice@example.test");
        _world.AddMember("bob@example.test");
        _config = _world.WriteMilterIni();
        await _world.StartAsync();
    }

    public async Task DisposeAsync() => await _world.DisposeAsync();

    private static (int Code, string Output, string Error) Cli(params string[] args) => ReleaseWorld.Cli(args);

    /// <summary>An S/MIME post written by openssl, sealed and deposited as the milter does it; returns the .eml path.</summary>
    private async Task<(string Path, KeyReleaseEntry Entry)> SealedPostAsync(string text)
    {
        string plain = Path.Combine(_world.Root, "plain.txt");
        string smime = Path.Combine(_world.Root, "post.eml");
        string listPem = Path.Combine(_world.Root, "list.pem");
        File.WriteAllText(listPem, _world.ListCertificate.ExportCertificatePem());
        File.WriteAllText(plain, text);
        (int code, _, string err) = await ExternalTool.RunAsync("openssl", ["cms", "-encrypt", "-aes-256-cbc", "-in", plain, "-out", smime, listPem]);
        Assert.True(code == 0, err);

        KeyReleaseSeal? seal = null;
        string sealedPath = Path.Combine(_world.Root, $"sealed-{Guid.NewGuid():N}.eml");
        using (FileStream input = File.OpenRead(smime))
        using (FileStream output = File.Create(sealedPath))
        {
            SmimeBodyRewriter.Rewrite(input, output, cms =>
            {
                var policy = new ReleasePolicy(ReleaseWorld.List, ReleaseMode.Rekey, "bob@example.test", DateTimeOffset.UtcNow.AddDays(1));
                seal = KeyReleaseSealer.Seal(cms, _world.ListKeys(), _world.ReleaseRecipient, _world.Url.ToString(), policy, KeyReleaseEntry.NewMessageId());
                return seal.ContentInfo;
            });
        }

        using KeyReleaseClient milter = _world.MilterHttp();
        await milter.DepositAsync(_world.Url, KeyReleaseDeposit.From(seal!), CancellationToken.None);
        return (sealedPath, seal!.Entry);
    }

    [Fact]
    public async Task FetchWritesAMessageOpensslOpensThenStatusAndRevokeWork()
    {
        (string sealedPath, KeyReleaseEntry entry) = await SealedPostAsync("Content-Type: text/plain\r\n\r\nminutes of the meeting\r\n");
        string readable = Path.Combine(_world.Root, "readable.eml");

        (int code, string output, string error) = Cli("release", "fetch", "--cert", _alice.CertificateFile, "--key", _alice.KeyFile,
            "--in", sealedPath, "--out", readable, "--server-cert", _world.TlsCertificateFile);
        Assert.True(code == 0, error);
        Assert.Contains(entry.MessageIdHex, output);
        (int decrypted, string plain, string why) = await ExternalTool.RunAsync("openssl", ["cms", "-decrypt", "-in", readable, "-recip", _alice.CertificateFile, "-inkey", _alice.KeyFile]);
        Assert.True(decrypted == 0, why);
        Assert.Contains("minutes of the meeting", plain);

        (code, output, error) = Cli("release", "status", entry.MessageIdHex, "--config", _config);
        Assert.True(code == 0, error);
        Assert.Contains("list crypto@lists.test, sender bob@example.test", output);
        Assert.Contains("1 member(s) fetched:", output);
        Assert.Contains("alice@example.test", output);

        Assert.Equal(0, Cli("release", "revoke", entry.MessageIdHex, "--member", "alice@example.test", "--config", _config).Code);
        (code, _, error) = Cli("release", "fetch", "--cert", _alice.CertificateFile, "--key", _alice.KeyFile,
            "--in", sealedPath, "--out", Path.Combine(_world.Root, "again.eml"), "--server-cert", _world.TlsCertificateFile);
        Assert.Equal(ReleaseCommands.ExitRefused, code);
        Assert.Contains("refused", error);
        Assert.False(File.Exists(Path.Combine(_world.Root, "again.eml")));
        Assert.Contains("revoked for alice@example.test", Cli("release", "status", entry.MessageIdHex, "--config", _config).Output);
    }

    [Fact]
    public async Task GpgsmDecryptsTheMessageFetchWrites()
    {
        (string sealedPath, _) = await SealedPostAsync("Content-Type: text/plain\r\n\r\nread with GnuPG\r\n");
        string readable = Path.Combine(_world.Root, "readable.eml");
        (int code, _, string error) = Cli("release", "fetch", "--cert", _alice.CertificateFile, "--key", _alice.KeyFile,
            "--in", sealedPath, "--out", readable, "--server-cert", _world.TlsCertificateFile);
        Assert.True(code == 0, error);

        // gpgsm reads CMS, not a mail message: the application/pkcs7-mime part's decoded content is what it gets.
        string der = await CmsOfAsync(readable);

        string home = Path.Combine(_world.Root, "gnupg");
        System.IO.Directory.CreateDirectory(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var gpg = new Dictionary<string, string> { ["GNUPGHOME"] = home };
        try
        {
            string plain = await GpgsmDecryptAsync(home, gpg, der);
            Assert.Contains("read with GnuPG", plain);

            // The sealed post itself (the release entry, no key for alice) is refused by gpgsm.
            await Assert.ThrowsAsync<Xunit.Sdk.TrueException>(async () => await GpgsmDecryptAsync(home, gpg, await CmsOfAsync(sealedPath)));
        }
        finally
        {
            await ExternalTool.RunAsync("gpgconf", ["--kill", "gpg-agent"], new ToolOptions { Environment = gpg });
        }
    }

    /// <summary>The decoded content of a message's application/pkcs7-mime body, written next to it as .p7m.</summary>
    private static async Task<string> CmsOfAsync(string eml)
    {
        string der = eml + ".p7m";
        using MimeKit.MimeMessage message = await MimeKit.MimeMessage.LoadAsync(eml);
        using FileStream output = File.Create(der);
        await Assert.IsType<MimeKit.Cryptography.ApplicationPkcs7Mime>(message.Body).Content!.DecodeToAsync(output);
        return der;
    }

    /// <summary>alice's key in a throwaway GnuPG home (imported once), then <c>gpgsm -d</c>; fails the test when gpgsm does.</summary>
    private async Task<string> GpgsmDecryptAsync(string home, Dictionary<string, string> gpg, string der)
    {
        const string Password = "release-test";
        if (!File.Exists(Path.Combine(home, "gpgsm.conf")))
        {
            ExternalTool.Require("gpgsm", "gpgsm");
            File.WriteAllText(Path.Combine(home, "gpg-agent.conf"), "allow-loopback-pinentry\n");
            File.WriteAllText(Path.Combine(home, "gpgsm.conf"), "disable-crl-checks\ndisable-policy-checks\n");
            // gpgsm 2.2 reads only the legacy PKCS#12 encryption (3DES, SHA-1).
            string p12 = Path.Combine(_world.Root, "alice.p12");
            using (var withKey = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(_alice.CertificateFile, _alice.KeyFile))
            {
                File.WriteAllBytes(p12, withKey.ExportPkcs12(new System.Security.Cryptography.PbeParameters(
                    System.Security.Cryptography.PbeEncryptionAlgorithm.TripleDes3KeyPkcs12, System.Security.Cryptography.HashAlgorithmName.SHA1, 2048), Password));
            }

            ToolResult imported = await ExternalTool.RunAsync("gpgsm", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12],
                new ToolOptions { Environment = gpg, Stdin = System.Text.Encoding.ASCII.GetBytes(Password + "\n") });
            Assert.True(imported.Succeeded, imported.StdErr);
        }

        string output = der + ".out";
        ToolResult decrypted = await ExternalTool.RunAsync("gpgsm", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", "-o", output, der],
            new ToolOptions { Environment = gpg, Stdin = System.Text.Encoding.ASCII.GetBytes(Password + "\n") });
        Assert.True(decrypted.Succeeded, decrypted.StdErr);
        return File.ReadAllText(output);
    }

    [Fact]
    public async Task FetchSaysWhatIsWrongWithItsInput()
    {
        (string sealedPath, _) = await SealedPostAsync("x\r\n");
        string readable = Path.Combine(_world.Root, "r.eml");
        string[] fetch = ["release", "fetch", "--cert", _alice.CertificateFile, "--key", _alice.KeyFile, "--out", readable];

        // A key server whose TLS certificate is not the trusted one: unreachable (exit 1), nothing written.
        (int code, _, string error) = Cli([.. fetch, "--in", sealedPath, "--server-cert", _alice.CertificateFile]);
        Assert.Equal(1, code);
        Assert.Contains("unreachable", error);

        // An ordinary S/MIME message: no release entry (exit 2).
        string plain = Path.Combine(_world.Root, "p.txt");
        string ordinary = Path.Combine(_world.Root, "ordinary.eml");
        File.WriteAllText(plain, "hi\r\n");
        await ExternalTool.RunAsync("openssl", ["cms", "-encrypt", "-in", plain, "-out", ordinary, _alice.CertificateFile]);
        (code, _, error) = Cli([.. fetch, "--in", ordinary, "--server-cert", _world.TlsCertificateFile]);
        Assert.Equal(2, code);
        Assert.Contains("no key-release entry", error);
        Assert.False(File.Exists(readable));

        Assert.Equal(2, Cli("release", "status", "not-an-id", "--config", _config).Code);
        Assert.Equal(2, Cli("release", "revoke", new string('a', 32), "--config", _config).Code);
    }
}
