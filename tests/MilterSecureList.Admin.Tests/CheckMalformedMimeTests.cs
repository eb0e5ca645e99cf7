using System.Text;
using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Admin.Tests;

/// <summary>
/// <c>securelist check</c> on input the MIME layer cannot use: the documented rejection (first line 554 5.6.0 with the
/// reason, exit 65), never a stack trace or exit 1, which is for failures on our side.
/// </summary>
[Collection(BackendCollection.Name)]
public sealed class CheckMalformedMimeTests(BackendFixture fixture)
{
    private const string List = "team@lists.example.org";

    private static string SmimeHeaders(string transferEncoding) =>
        $"From: dave@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: application/x-pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n" +
        $"Content-Transfer-Encoding: {transferEncoding}\r\n\r\n";

    public static TheoryData<string, byte[], string> Inputs() => new()
    {
        { "not a message", [0x00, 0x01, 0x02, 0xFF, .. "binary\r\n"u8], "the message does not start with a header field" },
        { "an mbox file", "From dave@example.com Sat Nov 21 16:00:00 2026\nSubject: x\n\nhi\n"u8.ToArray(), "does not start with a header field" },
        { "damaged base64", Encoding.ASCII.GetBytes(SmimeHeaders("base64") + "MIAGCSqGSIb3DQEHA6CAMIACAQAx#ggE\r\n"), "invalid base64 character '#' (0x23) at body offset 28" },
        { "quoted-printable", Encoding.ASCII.GetBytes(SmimeHeaders("quoted-printable") + "=30=80=06=09\r\n"), "send it with Content-Transfer-Encoding base64" },
        { "no CMS at all", Encoding.ASCII.GetBytes(SmimeHeaders("base64") + "aGVsbG8gd29ybGQ=\r\n"), "554 5.6.0 the S/MIME message to <team@lists.example.org> cannot be processed" },
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public void MalformedInputIsTheDocumentedRejection(string what, byte[] message, string expected)
    {
        using var cli = new CliHarness(fixture, "sqlite");
        cli.Run("list", "create", List, "--owner", "owner@example.org").AssertOk();
        cli.Run("member", "add", List, "alice@example.org", "--cert", cli.MemberCert("alice@example.org")).AssertOk();
        string path = Path.Combine(cli.Temp.Path, "post.eml");
        File.WriteAllBytes(path, message);

        CliResult result = cli.Run("check", "--from", "dave@example.com", "--rcpt", List, "--in", path);
        Assert.True(result.ExitCode == 65, $"{what}: exit {result.ExitCode}, {result.Output}{result.Error}");
        string first = result.Output.Split('\n')[0];
        Assert.StartsWith("554 5.6.0 ", first, StringComparison.Ordinal);
        Assert.Contains(expected, first, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.Error);
    }
}
