using MilterSecureList.Admin.Tests;
using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Gateway.Tests;

/// <summary><c>securelist user ...</c> and <c>securelist cert ...</c>, with openssl as the independent CA and reader.</summary>
[Collection(BackendCollection.Name)]
public sealed class UserAndCertCliTests(BackendFixture fixture)
{
    public static TheoryData<string> Backends => BackendFixture.Names;

    /// <summary>A CLI harness whose milter.ini has a [Gateway] section with an openssl-made local CA as trust anchor.</summary>
    private static (CliHarness Cli, string CaCert, string CaKey) Open(BackendFixture fixture, string backend)
    {
        var cli = new CliHarness(fixture, backend);
        string caKey = cli.Temp.File("ca.key");
        string caCert = cli.Temp.File("ca.pem");
        OpensslTool.Run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", caCert, "-subj", "/CN=Gateway Test CA", "-days", "30",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        File.SetUnixFileMode(caKey, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.AppendAllText(cli.ConfigFile, $"\n[Gateway]\nCaCertificate = {caCert}\nCaKey = {caKey}\nTrustAnchors = {caCert}\n");
        return (cli, caCert, caKey);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void UserAddGenerateExportsACertificateOpensslVerifiesAgainstTheCa(string backend)
    {
        (CliHarness cli, string caCert, _) = Open(fixture, backend);
        using (cli)
        {
            CliResult added = cli.Run("user", "add", "alice@example.org", "--generate", "--encrypt", "required").AssertOk();
            Assert.Contains("added gateway user alice@example.org", added.Output, StringComparison.Ordinal);
            string pem = cli.Temp.File("alice.pem");
            File.WriteAllText(pem, cli.Run("user", "export-cert", "alice@example.org").AssertOk().Output);
            Assert.Contains("OK", OpensslTool.Run("verify", "-CAfile", caCert, "-purpose", "smimesign", pem), StringComparison.Ordinal);
            Assert.Contains("alice@example.org", OpensslTool.Run("x509", "-in", pem, "-noout", "-email"), StringComparison.Ordinal);

            // The key file follows the list key rules: 0600 in the 0700 key directory, never in the export.
            string keyFile = Assert.Single(System.IO.Directory.GetFiles(cli.KeysDirectory));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            Assert.DoesNotContain("PRIVATE KEY", File.ReadAllText(pem), StringComparison.Ordinal);

            CliResult ls = cli.Run("user", "ls").AssertOk();
            Assert.Contains("alice@example.org", ls.Output, StringComparison.Ordinal);
            Assert.Contains("required", ls.Output, StringComparison.Ordinal);
            Assert.Contains("usable", ls.Output, StringComparison.Ordinal);

            cli.Run("user", "add", "alice@example.org", "--generate").AssertUserError("already exists");
            cli.Run("user", "add", "bob@example.org").AssertUserError("exactly one of --generate or --csr");
            cli.Run("user", "add", "bob@example.org", "--generate", "--encrypt", "sometimes").AssertUserError("--encrypt 'sometimes'");

            cli.Run("user", "remove", "alice@example.org").AssertOk();
            Assert.Empty(System.IO.Directory.GetFiles(cli.KeysDirectory));
            cli.Run("user", "export-cert", "alice@example.org").AssertUserError("no gateway user alice@example.org");
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void UserAddCsrThenImportTheExternalCasAnswer(string backend)
    {
        (CliHarness cli, string caCert, string caKey) = Open(fixture, backend);
        using (cli)
        {
            string csr = cli.Temp.File("bob.csr");
            cli.Run("user", "add", "bob@example.org", "--csr", csr).AssertOk();
            Assert.Contains("awaiting CA", cli.Run("user", "ls").AssertOk().Output, StringComparison.Ordinal);
            cli.Run("user", "export-cert", "bob@example.org").AssertUserError("has no certificate yet");

            // openssl plays the external CA and must accept our request.
            OpensslTool.Run("req", "-in", csr, "-verify", "-noout");
            string signed = cli.Temp.File("bob.pem");
            string ext = cli.Temp.File("ext.cnf");
            File.WriteAllText(ext, "subjectAltName=email:bob@example.org\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n");
            OpensslTool.Run("x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-out", signed, "-days", "10", "-extfile", ext);

            // A certificate for another key is refused; the CA's answer is attached.
            string other = cli.MemberCert("bob@example.org");
            cli.Run("user", "import", "bob@example.org", "--signed", other).AssertUserError("does not match the certificate");
            cli.Run("user", "import", "bob@example.org", "--signed", signed).AssertOk();
            Assert.Contains("usable", cli.Run("user", "ls").AssertOk().Output, StringComparison.Ordinal);
            cli.Run("user", "import", "bob@example.org", "--signed", signed).AssertUserError("already has a certificate");
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void UserImportPkcs12AndPemRefusesAKeyOthersCanRead(string backend)
    {
        (CliHarness cli, _, _) = Open(fixture, backend);
        using (cli)
        {
            string key = cli.Temp.File("carol.key");
            string cert = cli.Temp.File("carol.pem");
            OpensslTool.Run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=carol", "-days", "30", "-addext", "subjectAltName=email:carol@example.org");
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            cli.Run("user", "import", "carol@example.org", "--cert", cert, "--key", key).AssertUserError("group or others can read it");
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            cli.Run("user", "import", "dan@example.org", "--cert", cert, "--key", key).AssertUserError("not dan@example.org");
            cli.Run("user", "import", "carol@example.org", "--cert", cert, "--key", key).AssertOk();

            string p12 = cli.Temp.File("erin.p12");
            string erinKey = cli.Temp.File("erin.key");
            string erinCert = cli.Temp.File("erin.pem");
            OpensslTool.Run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", erinKey, "-out", erinCert, "-subj", "/CN=erin", "-days", "30", "-addext", "subjectAltName=email:erin@example.org");
            OpensslTool.Run("pkcs12", "-export", "-in", erinCert, "-inkey", erinKey, "-out", p12, "-passout", "pass:s3cret");
            cli.Run("user", "import", "erin@example.org", "--cert", p12, "--password", "wrong").AssertUserError("wrong password");
            cli.Run("user", "import", "erin@example.org", "--cert", p12, "--password", "s3cret", "--sign", "never").AssertOk();
            Assert.Equal(File.ReadAllText(erinCert).Trim(), cli.Run("user", "export-cert", "erin@example.org").AssertOk().Output.Trim());
            Assert.Equal(2, System.IO.Directory.GetFiles(cli.KeysDirectory).Length);
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void CertImportLsAcceptRemove(string backend)
    {
        (CliHarness cli, string caCert, string caKey) = Open(fixture, backend);
        using (cli)
        {
            string selfSigned = cli.MemberCert("frank@partner.example");
            cli.Run("cert", "import", "frank@partner.example", selfSigned).AssertOk();
            cli.Run("cert", "import", "frank@partner.example", selfSigned, "--trust", "ca-verified").AssertUserError("does not chain to a trusted CA");
            cli.Run("cert", "import", "frank@partner.example", selfSigned, "--trust", "harvested").AssertUserError("set by the gateway itself");
            cli.Run("cert", "import", "grace@partner.example", selfSigned).AssertUserError("not grace@partner.example");

            // A CA-issued certificate chains to [Gateway] TrustAnchors.
            string key = cli.Temp.File("h.key");
            string csr = cli.Temp.File("h.csr");
            string issued = cli.Temp.File("h.pem");
            string ext = cli.Temp.File("h.cnf");
            OpensslTool.Run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=heidi");
            File.WriteAllText(ext, "subjectAltName=email:heidi@partner.example\nextendedKeyUsage=emailProtection\n");
            OpensslTool.Run("x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-out", issued, "-days", "10", "-extfile", ext);
            cli.Run("cert", "import", "heidi@partner.example", issued, "--trust", "ca-verified").AssertOk();

            CliResult ls = cli.Run("cert", "ls").AssertOk();
            Assert.Contains("manual", ls.Output, StringComparison.Ordinal);
            Assert.Contains("ca-verified", ls.Output, StringComparison.Ordinal);
            Assert.Contains("2 certificate(s)", ls.Output, StringComparison.Ordinal);
            Assert.Contains("0 certificate(s)", cli.Run("cert", "ls", "--pending").AssertOk().Output, StringComparison.Ordinal);
            cli.Run("cert", "accept", "frank@partner.example").AssertUserError("no pending certificate");

            cli.Run("cert", "remove", "frank@partner.example").AssertOk();
            Assert.Contains("1 certificate(s)", cli.Run("cert", "ls").AssertOk().Output, StringComparison.Ordinal);
            cli.Run("cert", "remove", "frank@partner.example").AssertUserError("no certificate for frank@partner.example");
        }
    }

    [Fact]
    public void GatewayCheckPrintsTheVerdictAndWritesWhatOpensslReads()
    {
        (CliHarness cli, string caCert, _) = Open(fixture, "sqlite");
        using (cli)
        {
            cli.Run("user", "add", "alice@example.org", "--generate", "--encrypt", "required").AssertOk();
            string bobKey = cli.Temp.File("bob.key");
            string bobCert = cli.Temp.File("bob.pem");
            OpensslTool.Run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", bobKey, "-out", bobCert, "-subj", "/CN=bob", "-days", "30", "-addext", "subjectAltName=email:bob@partner.example");
            cli.Run("cert", "import", "bob@partner.example", bobCert).AssertOk();
            string input = cli.Temp.File("in.eml");
            File.WriteAllText(input, "From: alice@example.org\nTo: bob@partner.example\nSubject: offline\nMessage-ID: <c1@example.org>\n\nchecked offline\n");
            string output = cli.Temp.File("out.eml");

            CliResult checkedOut = cli.Run("gateway", "check", "--from", "alice@example.org", "--rcpt", "bob@partner.example", "--rcpt", "nobody@else.example", "--in", input, "--out", output).AssertOk();
            string[] lines = checkedOut.Output.Split('\n');
            Assert.Equal("250 2.0.0 continue", lines[0]);
            Assert.Contains("direction: outbound", checkedOut.Output, StringComparison.Ordinal);
            Assert.Contains("RCPT <nobody@else.example>: refused 550 5.7.1", checkedOut.Output, StringComparison.Ordinal);
            Assert.Contains("add header Content-Type: application/pkcs7-mime; smime-type=enveloped-data", checkedOut.Output, StringComparison.Ordinal);
            Assert.Contains("log: offline: gateway audit: signed for alice@example.org message-id=<c1@example.org>", checkedOut.Output, StringComparison.Ordinal);

            string decrypted = cli.Temp.File("dec.eml");
            OpensslTool.Run("cms", "-decrypt", "-in", output, "-recip", bobCert, "-inkey", bobKey, "-out", decrypted);
            string content = cli.Temp.File("content.txt");
            OpensslTool.Run("cms", "-verify", "-in", decrypted, "-CAfile", caCert, "-out", content);
            Assert.Contains("checked offline", File.ReadAllText(content), StringComparison.Ordinal);

            // Every recipient refused: exit 65 with the reply first.
            CliResult refused = cli.Run("gateway", "check", "--from", "alice@example.org", "--rcpt", "nobody@else.example", "--in", input);
            Assert.Equal(65, refused.ExitCode);
            Assert.StartsWith("550 5.7.1 <nobody@else.example>", refused.Output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void UserImportReadsAPassphraseProtectedPemKeyMadeByOpensslAndTheStoredKeySigns(string backend)
    {
        (CliHarness cli, _, _) = Open(fixture, backend);
        using (cli)
        {
            // openssl req without -nodes writes an encrypted PKCS#8 key (AES-256-CBC, PBKDF2) with the passphrase given.
            string passphrase = cli.Temp.File("dan.pass");
            File.WriteAllText(passphrase, "correct horse\n");
            File.SetUnixFileMode(passphrase, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            string key = cli.Temp.File("dan.key");
            string cert = cli.Temp.File("dan.pem");
            OpensslTool.Run("req", "-x509", "-newkey", "rsa:2048", "-keyout", key, "-passout", "file:" + passphrase, "-out", cert, "-subj", "/CN=dan", "-days", "30",
                "-addext", "subjectAltName=email:dan@example.org");
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Assert.Contains("ENCRYPTED PRIVATE KEY", File.ReadAllText(key), StringComparison.Ordinal);

            cli.Run("user", "import", "dan@example.org", "--cert", cert, "--key", key).AssertUserError("give --passphrase-file");
            string wrong = cli.Temp.File("wrong.pass");
            File.WriteAllText(wrong, "battery staple\n");
            File.SetUnixFileMode(wrong, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            cli.Run("user", "import", "dan@example.org", "--cert", cert, "--key", key, "--passphrase-file", wrong).AssertUserError("wrong passphrase");
            File.SetUnixFileMode(wrong, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            cli.Run("user", "import", "dan@example.org", "--cert", cert, "--key", key, "--passphrase-file", wrong).AssertUserError("group or others can read it");
            cli.Run("user", "import", "dan@example.org", "--cert", cert, "--key", key, "--passphrase-file", cli.Temp.File("none.pass")).AssertUserError("does not exist");

            cli.Run("user", "import", "dan@example.org", "--cert", cert, "--key", key, "--passphrase-file", passphrase).AssertOk();
            // The stored copy (in the key directory, under [Keys] rules) is the key that signs: the offline check uses it.
            string input = cli.Temp.File("in.eml");
            File.WriteAllText(input, "From: dan@example.org\r\nTo: x@else.example\r\nMessage-ID: <d1@example.org>\r\nSubject: s\r\n\r\nhello\r\n");
            CliResult checkedOut = cli.Run("gateway", "check", "--from", "dan@example.org", "--rcpt", "x@else.example", "--in", input).AssertOk();
            Assert.Contains("gateway audit: signed for dan@example.org", checkedOut.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("ENCRYPTED PRIVATE KEY", File.ReadAllText(Assert.Single(System.IO.Directory.GetFiles(cli.KeysDirectory))), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void EcUsersAreGeneratedAndImportedFromPkcs12AndPassphraseProtectedPemAndTheirStoredKeysSign()
    {
        (CliHarness cli, string caCert, _) = Open(fixture, "sqlite");
        using (cli)
        {
            // --generate --key-type p256: an ECDSA/ECDH certificate from the local CA, its key 0600 in the key directory.
            cli.Run("user", "add", "eve@example.org", "--generate", "--key-type", "p256").AssertOk();
            string pem = cli.Temp.File("eve.pem");
            File.WriteAllText(pem, cli.Run("user", "export-cert", "eve@example.org").AssertOk().Output);
            string text = OpensslTool.Run("x509", "-in", pem, "-noout", "-text");
            Assert.Contains("prime256v1", text, StringComparison.Ordinal);
            Assert.Contains("Digital Signature, Non Repudiation, Key Agreement", text, StringComparison.Ordinal);
            Assert.Contains("OK", OpensslTool.Run("verify", "-CAfile", caCert, "-purpose", "smimesign", pem), StringComparison.Ordinal);
            string keyFile = Assert.Single(System.IO.Directory.GetFiles(cli.KeysDirectory));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            cli.Run("user", "add", "x@example.org", "--generate", "--key-type", "ed25519").AssertUserError("--key-type 'ed25519'");
            Assert.Contains("signed for eve@example.org", Sign(cli, "eve@example.org", caCert), StringComparison.Ordinal);

            // PKCS#12 with a P-384 key, as openssl exports it.
            string fayKey = cli.Temp.File("fay.key");
            string fayCert = cli.Temp.File("fay.pem");
            string p12 = cli.Temp.File("fay.p12");
            OpensslTool.Run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout", fayKey, "-out", fayCert, "-subj", "/CN=fay", "-days", "30",
                "-addext", "subjectAltName=email:fay@example.org", "-addext", "keyUsage=critical,digitalSignature,keyAgreement");
            OpensslTool.Run("pkcs12", "-export", "-in", fayCert, "-inkey", fayKey, "-out", p12, "-passout", "pass:s3cret");
            cli.Run("user", "import", "fay@example.org", "--cert", p12, "--password", "s3cret").AssertOk();
            Assert.Contains("signed for fay@example.org", Sign(cli, "fay@example.org", fayCert), StringComparison.Ordinal);

            // A passphrase-protected (encrypted PKCS#8) P-256 PEM key.
            string passphrase = cli.Temp.File("gus.pass");
            File.WriteAllText(passphrase, "correct horse\n");
            File.SetUnixFileMode(passphrase, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            string gusKey = cli.Temp.File("gus.key");
            string gusCert = cli.Temp.File("gus.pem");
            OpensslTool.Run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", gusKey, "-passout", "file:" + passphrase, "-out", gusCert, "-subj", "/CN=gus", "-days", "30",
                "-addext", "subjectAltName=email:gus@example.org", "-addext", "keyUsage=critical,digitalSignature,keyAgreement");
            File.SetUnixFileMode(gusKey, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Assert.Contains("ENCRYPTED PRIVATE KEY", File.ReadAllText(gusKey), StringComparison.Ordinal);
            cli.Run("user", "import", "gus@example.org", "--cert", gusCert, "--key", gusKey).AssertUserError("give --passphrase-file");
            cli.Run("user", "import", "gus@example.org", "--cert", gusCert, "--key", gusKey, "--passphrase-file", passphrase).AssertOk();
            Assert.Contains("signed for gus@example.org", Sign(cli, "gus@example.org", gusCert), StringComparison.Ordinal);
            Assert.Equal(3, System.IO.Directory.GetFiles(cli.KeysDirectory).Length);
            Assert.All(System.IO.Directory.GetFiles(cli.KeysDirectory), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));

            // An EC key that may only sign cannot decrypt: refused, with the reason.
            string henKey = cli.Temp.File("hen.key");
            string henCert = cli.Temp.File("hen.pem");
            OpensslTool.Run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", henKey, "-out", henCert, "-subj", "/CN=hen", "-days", "30",
                "-addext", "subjectAltName=email:hen@example.org", "-addext", "keyUsage=critical,digitalSignature");
            cli.Run("user", "import", "hen@example.org", "--cert", henCert, "--key", henKey).AssertUserError("must allow digitalSignature and keyAgreement");
        }
    }

    /// <summary>USER's plain mail through <c>gateway check</c> (the stored key signs), verified by openssl against ANCHOR.</summary>
    private static string Sign(CliHarness cli, string user, string anchor)
    {
        string input = cli.Temp.File($"{Guid.NewGuid():N}.eml");
        File.WriteAllText(input, $"From: {user}\r\nTo: x@else.example\r\nMessage-ID: <{Guid.NewGuid():N}@example.org>\r\nSubject: s\r\n\r\nsigned by an EC key\r\n");
        string output = cli.Temp.File($"{Guid.NewGuid():N}.out.eml");
        CliResult checkedOut = cli.Run("gateway", "check", "--from", user, "--rcpt", "x@else.example", "--in", input, "--out", output).AssertOk();
        string content = cli.Temp.File($"{Guid.NewGuid():N}.txt");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-verify", "-in", output, "-CAfile", anchor, "-purpose", "any", "-out", content);
        Assert.True(code == 0, $"openssl cms -verify for {user}: {error}");
        Assert.Contains("signed by an EC key", File.ReadAllText(content), StringComparison.Ordinal);
        return checkedOut.Output;
    }
}
