using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Testing;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// gpgsm (GnuPG) and NSS cmsutil (the engine inside Thunderbird) as the correspondent bob: they read what the gateway
/// sends (decrypt, verify) and write what it receives (signatures it must verify).
/// </summary>
public sealed class GpgsmNssTests : IDisposable
{
    private const string Password = "peer-pass";
    private readonly GatewayWorld _world = new();
    private readonly string _gnupg;
    private readonly string _nss;

    public GpgsmNssTests()
    {
        string gpgsm = ExternalTool.Require("gpgsm", "gpgsm");
        ExternalTool.Require("cmsutil", "libnss3-tools");
        _gnupg = _world.Temp.File("gnupg");
        System.IO.Directory.CreateDirectory(_gnupg, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(_gnupg, "gpg-agent.conf"), "allow-loopback-pinentry\n");
        File.WriteAllText(Path.Combine(_gnupg, "gpgsm.conf"), "disable-crl-checks\n");
        try
        {
            // gpgsm 2.2 reads only the legacy PKCS#12 encryption (3DES).
            string p12 = _world.Temp.File("bob.p12");
            using (var withKey = _world.Bob.Certificate.CopyWithPrivateKey((RSA)_world.Bob.Key))
            {
                File.WriteAllBytes(p12, withKey.ExportPkcs12(new PbeParameters(PbeEncryptionAlgorithm.TripleDes3KeyPkcs12, HashAlgorithmName.SHA1, 2048), Password));
            }

            Gpg("--batch", "--import", _world.CaFile);
            GpgWithPassphrase("--import", p12);
            string fpr = _world.Ca.GetCertHashString();
            File.WriteAllText(Path.Combine(_gnupg, "trustlist.txt"), string.Join(':', Enumerable.Range(0, 20).Select(i => fpr.Substring(2 * i, 2))) + " S relax\n");
            _ = gpgsm;

            _nss = "sql:" + _world.Temp.File("nss");
            System.IO.Directory.CreateDirectory(_world.Temp.File("nss"));
            Run("certutil", "-N", "-d", _nss, "--empty-password");
            Run("certutil", "-A", "-d", _nss, "-n", "ca", "-t", "C,C,C", "-i", _world.CaFile);
            Run("pk12util", "-i", p12, "-d", _nss, "-W", Password);
            _world.Know(_world.Bob);
        }
        catch
        {
            // xUnit does not dispose a class whose constructor failed: stop the agent and remove the files here.
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        ExternalTool.Run("gpgconf", ["--kill", "gpg-agent"], GnupgOptions(TimeSpan.FromSeconds(20)));
        _world.Dispose();
    }

    [Fact]
    public void WhatTheGatewaySendsDecryptsAndVerifiesWithGpgsmAndCmsutil()
    {
        byte[] message = GatewayWorld.PlainMessage("alice@gw.example", "bob@partner.example", "read by gpgsm and NSS");
        (GatewayResult result, byte[] output, _) = _world.Run("alice@gw.example", ["bob@partner.example"], message);
        Assert.Contains("encrypted to 1 recipient(s)", result.Reason, StringComparison.Ordinal);
        (_, byte[] body) = GatewayMessages.Split(output);
        string der = _world.Write(Convert.FromBase64String(Encoding.ASCII.GetString(body)), "p7m");

        string fromGpgsm = _world.Temp.File("gpgsm.out");
        GpgWithPassphrase("-d", "-o", fromGpgsm, der);
        string fromNss = _world.Temp.File("nss.out");
        Run("cmsutil", "-D", "-i", der, "-o", fromNss, "-d", _nss, "-p", string.Empty);
        Assert.Equal(File.ReadAllBytes(fromGpgsm), File.ReadAllBytes(fromNss));

        // The inner multipart/signed: gpgsm checks the detached signature over the first part, chained to the CA.
        GpgsmVerifiesMultipartSigned(File.ReadAllBytes(fromGpgsm), "alice@gw.example", "read by gpgsm and NSS");
    }

    [Fact]
    public void AnEcUsersEcdsaSignatureVerifiesWithGpgsm()
    {
        // gpgsm 2.2 verifies ECDSA; it cannot encrypt to an EC certificate ("Wrong key usage" for keyAgreement), so
        // mail to EC users is tested with openssl (EcUserTests).
        Party erin = _world.Issue("erin@gw.example", ECDsa.Create(ECCurve.NamedCurves.nistP256));
        _world.Administration.Import(erin.Address, erin.CertFile, erin.KeyFile, null, false, null, null, null).Dispose();
        (GatewayResult result, byte[] output, _) = _world.Run(erin.Address, ["nobody@elsewhere.example"],
            GatewayWorld.PlainMessage(erin.Address, "nobody@elsewhere.example", "signed by an EC key"));
        Assert.Equal("signed (multipart/signed)", result.Reason);
        GpgsmVerifiesMultipartSigned(output, erin.Address, "signed by an EC key");
    }

    /// <summary>ENTITY is multipart/signed: gpgsm verifies its detached signature over the first part, by SIGNER.</summary>
    private void GpgsmVerifiesMultipartSigned(byte[] entity, string signer, string text)
    {
        (List<GatewayHeader> innerHeaders, byte[] innerBody) = GatewayMessages.Split(entity);
        SmimeForm form = SmimeForm.Of(innerHeaders);
        Assert.Equal(SmimeKind.MultipartSigned, form.Kind);
        (ReadOnlyMemory<byte> signed, ReadOnlyMemory<byte> signaturePart) = MultipartSignedBody.Split(innerBody, form.Boundary!);
        Assert.Contains(text, Encoding.UTF8.GetString(signed.Span), StringComparison.Ordinal);
        (_, byte[] signatureBase64) = GatewayMessages.Split(signaturePart.Span);
        string signature = _world.Write(Convert.FromBase64String(Encoding.ASCII.GetString(signatureBase64)), "p7s");
        string content = _world.Write(signed.ToArray(), "content");
        (int code, _, string error) = GpgTry("--batch", "--verify", signature, content);
        Assert.True(code == 0, error);
        Assert.Contains("Good signature", error, StringComparison.Ordinal);
        Assert.Contains(signer, error, StringComparison.Ordinal);
    }

    [Fact]
    public void SignaturesMadeByGpgsmAndCmsutilAreVerifiedAndAlteredOnesRefused()
    {
        byte[] entity = Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nsigned by a peer\r\n");
        string input = _world.Write(entity, "entity");

        string gpgsmSignature = _world.Temp.File("gpgsm.p7s");
        GpgWithPassphrase("-u", "bob@partner.example", "--detach-sign", "-o", gpgsmSignature, input);
        string nssSignature = _world.Temp.File("nss.p7s");
        Run("cmsutil", "-S", "-T", "-N", NssNickname(), "-i", input, "-o", nssSignature, "-d", _nss, "-p", string.Empty);

        foreach (string signature in new[] { gpgsmSignature, nssSignature })
        {
            byte[] good = MultipartSigned(entity, File.ReadAllBytes(signature));
            (GatewayResult accepted, byte[] output, _) = _world.Run("bob@partner.example", ["alice@gw.example"], good);
            Assert.True(accepted.Verdict == GatewayVerdict.Continue, $"{signature}: {accepted.Reason}");
            Assert.Contains("smime=pass body.smime-identifier=bob@partner.example", Encoding.ASCII.GetString(output), StringComparison.Ordinal);

            byte[] altered = MultipartSigned(Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nsigned by a peeR\r\n"), File.ReadAllBytes(signature));
            (GatewayResult refused, _, _) = _world.Run("bob@partner.example", ["alice@gw.example"], altered);
            Assert.Equal(GatewayVerdict.Reject, refused.Verdict);
        }
    }

    [Fact]
    public void MailEncryptedByGpgsmAndCmsutilIsDecryptedForTheUser()
    {
        Gpg("--batch", "--import", _world.Alice.CertFile);
        Run("certutil", "-A", "-d", _nss, "-n", "alice", "-t", ",,", "-i", _world.Alice.CertFile);
        string input = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nfor alice only\r\n"), "entity");
        string fromGpgsm = _world.Temp.File("gpgsm.p7m");
        Gpg("--batch", "-r", "alice@gw.example", "-e", "-o", fromGpgsm, input);
        string fromNss = _world.Temp.File("nss.p7m");
        Run("cmsutil", "-E", "-r", "alice@gw.example", "-i", input, "-o", fromNss, "-d", _nss);

        foreach (string der in new[] { fromGpgsm, fromNss })
        {
            byte[] message = Pkcs7MimeMessage("enc", "enveloped-data", File.ReadAllBytes(der));
            (GatewayResult result, byte[] output, _) = _world.Run("bob@partner.example", ["alice@gw.example"], message);
            Assert.True(result.Reason.StartsWith("decrypted for alice@gw.example", StringComparison.Ordinal), $"{der}: {result.Reason}");
            Assert.Contains("for alice only", Encoding.ASCII.GetString(output), StringComparison.Ordinal);
        }
    }

    private const string FromBob = "From: bob@partner.example\r\nTo: alice@gw.example\r\n";

    [Fact]
    public async Task MailSignedAndEncryptedByOpensslGpgsmAndCmsutilArrivesThroughPostfixDecryptedAndVerified()
    {
        Gpg("--batch", "--import", _world.Alice.CertFile);
        Run("certutil", "-A", "-d", _nss, "-n", "alice", "-t", ",,", "-i", _world.Alice.CertFile);
        var sent = new Dictionary<string, byte[]>(StringComparer.Ordinal);

        // openssl: multipart/signed, then enveloped-data (AES-256-CBC) around it, as openssl smime clients send.
        string opensslEntity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nsecret from openssl\r\n"), "entity");
        string opensslSigned = _world.Temp.File("openssl.signed");
        OpensslTool.Run("cms", "-sign", "-in", opensslEntity, "-signer", _world.Bob.CertFile, "-inkey", _world.Bob.KeyFile, "-out", opensslSigned);
        sent["openssl"] = _world.OpensslMessage(FromBob + "Subject: openssl\r\n", "cms", "-encrypt", "-aes256", "-in", opensslSigned, _world.Alice.CertFile);

        // gpgsm: a detached signature in multipart/signed, then encrypted to alice.
        byte[] gpgsmEntity = Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nsecret from gpgsm\r\n");
        string gpgsmSignature = _world.Temp.File("gpgsm.p7s");
        GpgWithPassphrase("-u", "bob@partner.example", "--detach-sign", "-o", gpgsmSignature, _world.Write(gpgsmEntity, "entity"));
        string gpgsmEnveloped = _world.Temp.File("gpgsm.p7m");
        Gpg("--batch", "-r", "alice@gw.example", "-e", "-o", gpgsmEnveloped, _world.Write(MultipartSignedEntity(gpgsmEntity, File.ReadAllBytes(gpgsmSignature)), "signed"));
        sent["gpgsm"] = Pkcs7MimeMessage("gpgsm", "enveloped-data", File.ReadAllBytes(gpgsmEnveloped));

        // NSS cmsutil: an opaque signed-data (the entity inside), then encrypted to alice.
        // (Delivered unwrapped: Content-Type text/plain; checked below.)
        string nssSigned = _world.Temp.File("nss.p7m.signed");
        Run("cmsutil", "-S", "-N", NssNickname(), "-i", _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nsecret from cmsutil\r\n"), "entity"),
            "-o", nssSigned, "-d", _nss, "-p", string.Empty);
        string nssEnveloped = _world.Temp.File("nss.p7m");
        Run("cmsutil", "-E", "-r", "alice@gw.example", "-i", _world.Write(Pkcs7MimeEntity("signed-data", File.ReadAllBytes(nssSigned)), "signed"), "-o", nssEnveloped, "-d", _nss);
        sent["cmsutil"] = Pkcs7MimeMessage("cmsutil", "enveloped-data", File.ReadAllBytes(nssEnveloped));

        await using DaemonProcess daemon = await DaemonProcess.StartAsync(_world.DaemonIni("gateway"));
        await using PostfixInstance postfix = await PostfixInstance.StartAsync(daemon.Socket);
        foreach ((string peer, byte[] message) in sent)
        {
            Assert.DoesNotContain($"secret from {peer}", Encoding.ASCII.GetString(message), StringComparison.Ordinal);
            SmtpResult result = await postfix.SendAsync("bob@partner.example", ["alice@gw.example"], message);
            Assert.True(result.Code == 250, $"{peer}: {result.Code} {result.Text}");
        }

        IReadOnlyList<SinkMessage> delivered = await postfix.WaitForSinkMessagesAsync(sent.Count, TimeSpan.FromSeconds(60));
        foreach (string peer in sent.Keys)
        {
            SinkMessage copy = Assert.Single(delivered, m => m.Headers.Contains($"Subject: {peer}\n", StringComparison.Ordinal));
            Assert.Equal(["<alice@gw.example>"], copy.Recipients);
            Assert.Contains("\nAuthentication-Results: gw.example; smime=pass body.smime-identifier=bob@partner.example\n", "\n" + copy.Headers, StringComparison.Ordinal);
            // Decrypted: a detached signature stays beside the content (multipart/signed), an opaque one is unwrapped.
            Assert.DoesNotContain("application/pkcs7-mime", copy.Headers + copy.Body, StringComparison.OrdinalIgnoreCase);
            Assert.Contains($"\nsecret from {peer}\n", "\n" + copy.Body, StringComparison.Ordinal);
        }

        Assert.Contains("Content-Type: text/plain; charset=us-ascii", Assert.Single(delivered, m => m.Headers.Contains("Subject: cmsutil\n", StringComparison.Ordinal)).Headers, StringComparison.Ordinal);
        await Poll.UntilAsync(() => daemon.Output.Split('\n').Count(l => l.Contains("gateway audit: decrypted for alice@gw.example", StringComparison.Ordinal)) >= 3,
            "three decryption audit lines", evidence: () => daemon.Output);
        Assert.Equal(3, daemon.Output.Split('\n').Count(l => l.Contains("gateway audit: decrypted for alice@gw.example", StringComparison.Ordinal)));
    }

    private static byte[] MultipartSigned(byte[] entity, byte[] signature) =>
        [.. Encoding.ASCII.GetBytes(FromBob + "Subject: peer\r\n"), .. MultipartSignedEntity(entity, signature)];

    /// <summary>A multipart/signed MIME entity (with MIME-Version) around ENTITY and its detached SIGNATURE.</summary>
    private static byte[] MultipartSignedEntity(byte[] entity, byte[] signature) => Encoding.ASCII.GetBytes(
        "MIME-Version: 1.0\r\n" +
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"b1\"\r\n\r\n" +
        "--b1\r\n" + Encoding.ASCII.GetString(entity) + "\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
        Convert.ToBase64String(signature, Base64FormattingOptions.InsertLineBreaks) + "\r\n--b1--\r\n");

    /// <summary>An application/pkcs7-mime entity (with MIME-Version) carrying DER.</summary>
    private static byte[] Pkcs7MimeEntity(string smimeType, byte[] der) => Encoding.ASCII.GetBytes(
        $"MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type={smimeType}; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
        Convert.ToBase64String(der, Base64FormattingOptions.InsertLineBreaks) + "\r\n");

    private static byte[] Pkcs7MimeMessage(string subject, string smimeType, byte[] der) =>
        [.. Encoding.ASCII.GetBytes(FromBob + $"Subject: {subject}\r\n"), .. Pkcs7MimeEntity(smimeType, der)];

    private string NssNickname()
    {
        (int _, string listing, string _) = ExternalTool.RunAsync("certutil", ["-L", "-d", _nss], TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        string line = listing.Split('\n').First(l => l.Contains("u,u,u", StringComparison.Ordinal));
        return line[..line.LastIndexOf("u,u,u", StringComparison.Ordinal)].Trim();
    }

    private void Gpg(params string[] args)
    {
        (int code, _, string error) = GpgTry(args);
        Assert.True(code == 0, $"gpgsm {string.Join(' ', args)}: {error}");
    }

    private (int Code, string Output, string Error) GpgTry(params string[] args) =>
        ExternalTool.Run("gpgsm", args, GnupgOptions(TimeSpan.FromSeconds(60)));

    /// <summary>gpgsm with the key's passphrase on standard input (loopback pinentry, no agent dialogue).</summary>
    private void GpgWithPassphrase(params string[] args)
    {
        (int code, _, string error) = ExternalTool.Run("gpgsm", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", .. args],
            GnupgOptions(TimeSpan.FromSeconds(60)) with { Stdin = Encoding.UTF8.GetBytes(Password + "\n") });
        Assert.True(code == 0, $"gpgsm {string.Join(' ', args)}: {error}");
    }

    /// <summary>gpgconf and gpgsm see this test's own home directory (and agent), never the user's.</summary>
    private ToolOptions GnupgOptions(TimeSpan timeout) =>
        new() { Timeout = timeout, Environment = new Dictionary<string, string> { ["GNUPGHOME"] = _gnupg } };

    private static void Run(string tool, params string[] args)
    {
        (int code, _, string error) = ExternalTool.RunAsync(tool, args, TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        Assert.True(code == 0, $"{tool} {string.Join(' ', args)}: {error}");
    }
}
