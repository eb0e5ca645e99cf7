using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Admin.Tests;

/// <summary>
/// Input that <c>securelist smime rewrap</c> and <c>securelist check</c> cannot handle (malformed MIME or CMS, an
/// algorithm outside the allow-list, a list certificate unfit for its job) is the message's or the operator's
/// fault: exit 2 with one line for rewrap, the documented 554 5.6.0 reply (exit 65) for check; never exit 1, which
/// is for failures on our side.
/// </summary>
[Collection(BackendCollection.Name)]
public sealed class SmimeInputErrorTests(BackendFixture fixture)
{
    private const string Entity = "Content-Type: text/plain\r\n\r\nbudget\r\n";

    public static TheoryData<string, string> BadPosts => new()
    {
        // name, fragment of the one-line reason
        { "malformed-base64", "base64" },
        { "malformed-cms", "malformed" },
        { "unsupported-cipher", "not supported" },
    };

    [Theory]
    [MemberData(nameof(BadPosts))]
    public void RewrapRefusesInputItCannotHandleWithExit2(string kind, string reason)
    {
        using var cli = new CliHarness(fixture, "sqlite");
        string dir = cli.Temp.Path;
        (string listCert, string listKey) = Pair(dir, "list@example.org", "keyEncipherment");
        (string aliceCert, _) = Pair(dir, "alice@example.org", "keyEncipherment");
        string post = BadPost(dir, listCert, kind);

        CliResult r = CliHarness.RunRaw("smime", "rewrap", "--list-cert", listCert, "--list-key", listKey, "--member", aliceCert,
            "--in", post, "--out", Path.Combine(dir, "out.eml"));

        r.AssertUserError(reason);
        Assert.False(File.Exists(Path.Combine(dir, "out.eml")));
    }

    [Fact]
    public void RewrapRefusesAListCertificateWithoutKeyEnciphermentSayingSo()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        string dir = cli.Temp.Path;
        (string listCert, string listKey) = Pair(dir, "list@example.org", "digitalSignature");
        (string aliceCert, _) = Pair(dir, "alice@example.org", "keyEncipherment");
        string post = Encrypt(dir, listCert, "-aes256");

        CliResult r = CliHarness.RunRaw("smime", "rewrap", "--list-cert", listCert, "--list-key", listKey, "--member", aliceCert,
            "--in", post, "--out", Path.Combine(dir, "out.eml"));

        r.AssertUserError("does not allow keyEncipherment");
        Assert.DoesNotContain("does not match", r.Error, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(BadPosts))]
    public void CheckAnswers554ForInputItCannotHandle(string kind, string reason)
    {
        using var cli = new CliHarness(fixture, "sqlite");
        string dir = cli.Temp.Path;
        cli.Run("list", "create", "team@lists.example.org", "--owner", "owner@example.org").AssertOk();
        (string aliceCert, _) = Pair(dir, "alice@example.org", "keyEncipherment");
        cli.Run("member", "add", "team@lists.example.org", "alice@example.org", "--cert", aliceCert).AssertOk();
        string listCert = Path.Combine(dir, "team.pem");
        File.WriteAllText(listCert, cli.Run("list", "export-cert", "team@lists.example.org").AssertOk().Output);
        string post = BadPost(dir, listCert, kind);

        CliResult r = cli.Run("check", "--from", "dave@example.com", "--rcpt", "team@lists.example.org", "--in", post);

        Assert.True(r.ExitCode == 65, $"exit {r.ExitCode}; stdout: {r.Output}; stderr: {r.Error}");
        string first = r.Output.Split('\n')[0];
        Assert.StartsWith("554 5.6.0 the S/MIME message to <team@lists.example.org> cannot be processed", first, StringComparison.Ordinal);
        Assert.Contains(reason, first, StringComparison.OrdinalIgnoreCase);
    }

    private static string BadPost(string dir, string listCert, string kind)
    {
        switch (kind)
        {
            case "malformed-base64":
            {
                string good = File.ReadAllText(Encrypt(dir, listCert, "-aes256"));
                int body = good.IndexOf("\n\n", StringComparison.Ordinal) + 2;
                return Write(dir, good[..body] + "MIAGCSqGSIb3DQEHA!!!\n");
            }

            case "malformed-cms":
            {
                string good = File.ReadAllText(Encrypt(dir, listCert, "-aes256"));
                int body = good.IndexOf("\n\n", StringComparison.Ordinal) + 2;
                // A ContentInfo that claims EnvelopedData and then ends: "30 0D 06 09 <envelopedData> A0 00".
                return Write(dir, good[..body] + Convert.ToBase64String(Convert.FromHexString("300D06092A864886F70D010703A000")) + "\n");
            }

            default:
                // Blowfish-CBC carries no key length in its parameters: outside what the engine can re-key.
                return Encrypt(dir, listCert, "-provider", "legacy", "-provider", "default", "-bf-cbc");
        }
    }

    private static string Write(string dir, string message)
    {
        string path = Path.Combine(dir, "bad.eml");
        File.WriteAllText(path, message);
        return path;
    }

    private static (string Cert, string Key) Pair(string dir, string address, string keyUsage)
    {
        string cert = Path.Combine(dir, address + ".crt.pem");
        string key = Path.Combine(dir, address + ".key.pem");
        OpensslTool.Run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-keyout", key, "-out", cert, "-subj", $"/CN={address}",
            "-addext", $"subjectAltName=email:{address}", "-addext", $"keyUsage=critical,{keyUsage}");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (cert, key);
    }

    private static string Encrypt(string dir, string recipientCert, params string[] cipher)
    {
        string entity = Path.Combine(dir, "entity.txt");
        File.WriteAllText(entity, Entity);
        string post = Path.Combine(dir, "post.eml");
        OpensslTool.Run(["cms", "-encrypt", .. cipher, "-binary", "-subject", "budget", "-in", entity, "-out", post, recipientCert]);
        return post;
    }
}
