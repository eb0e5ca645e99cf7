using MilterSecureList.Directory;
using MilterSecureList.Directory.Tests.Fixtures;
using MilterSecureList.Testing;

namespace MilterSecureList.Admin.Tests;

/// <summary>
/// What an operator (or an attacker feeding the CLI) can type: device files as certificates, '@' arguments,
/// addresses with control characters or non-ASCII, unknown lists, and key files written by root for the daemon.
/// Every refusal is one line with the documented exit code.
/// </summary>
[Collection(BackendCollection.Name)]
public sealed class OperatorInputTests(BackendFixture fixture)
{
    private const string List = "news@example.org";

    [Fact]
    public void DevicesAndFifosAreRefusedAsCertificatesWithoutReadingThem()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        cli.Run("list", "create", List, "--key-type", "p256").AssertOk();
        string fifo = cli.Temp.File("cert.fifo");
        Tool("mkfifo", fifo);

        cli.Run("member", "add", List, "a@example.org", "--cert", "/dev/zero").AssertUserError("/dev/zero: not a regular file, not a certificate");
        // A FIFO with no writer would block open(2) forever; it is refused before it is opened.
        cli.Run("member", "add", List, "a@example.org", "--cert", fifo).AssertUserError($"{fifo}: not a regular file");

        // In a CSV import the device is one refused entry; the rest is imported.
        string csv = cli.Temp.File("members.csv");
        File.WriteAllLines(csv,
        [
            "b@example.org,/dev/zero",
            $"c@example.org,{cli.MemberCert("c@example.org")}",
        ]);
        CliResult import = cli.Run("member", "import", List, "--csv", csv).AssertOk();
        Assert.Contains("1 accepted, 1 refused", import.Output, StringComparison.Ordinal);
        Assert.Contains("not a regular file", import.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void ArgumentsStartingWithAtAreDataNotResponseFiles()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        cli.Run("list", "create", List, "--key-type", "p256").AssertOk();
        string secret = cli.Temp.File("secret.txt");
        File.WriteAllText(secret, "topsecret-token other words");

        CliResult result = cli.Run("member", "add", List, "@" + secret);

        Assert.Equal(2, result.ExitCode);
        Assert.DoesNotContain("topsecret-token", result.Error + result.Output, StringComparison.Ordinal);
        result.AssertOneLine($"'@{secret}' is not a valid mail address");
    }

    [Fact]
    public void UnknownListWithPlainExits67WithOneLine()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        CliResult result = cli.Run("member", "ls", "nolist@example.org", "--plain");
        Assert.Equal(67, result.ExitCode);
        Assert.Empty(result.Output);
        result.AssertOneLine("no list nolist@example.org");
    }

    [Fact]
    public void MemberErrorsSayWhatToDo()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        cli.Run("list", "create", List, "--key-type", "p256").AssertOk();
        cli.Run("member", "add", List, "x@example.org").AssertUserError("x@example.org needs a certificate: give --cert FILE");

        // A certificate naming the same address twice (SAN and subject) is reported once.
        using var cert = TestCertificates.Rsa("a@example.org", subjectEmail: "a@example.org");
        string file = TestCertificates.WritePem(cert, cli.Temp.File("a.pem"));
        cli.Run("member", "add", List, "b@example.org", "--cert", file)
            .AssertUserError("certificate is issued to a@example.org, not b@example.org");
    }

    [Fact]
    public void AddressesWithControlCharactersOrNonAsciiListNamesAreOneLineUsageErrors()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        cli.Run("list", "create", "läst@example.org").AssertUserError("list address 'läst@example.org' is not ASCII");
        cli.Run("list", "create", "a\nb@example.org").AssertUserError("'a\\nb@example.org'");
        cli.Run("list", "create", List, "--key-type", "p256").AssertOk();
        cli.Run("member", "add", List, "x\r\ny@example.org", "--cert", "x.pem").AssertUserError("x\\r\\ny@example.org");
    }

    [Fact]
    public void KeyFilesBelongToTheKeyDirectoryOwnerWhoeverRunsTheCli()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        if (UnixFile.IsRoot)
        {
            // Root (the README's commands) writes keys and a new SQLite database for the service user that owns
            // the state directory, as the package sets up /var/lib/securelist and its keys/.
            const uint nobody = 65534;
            File.SetUnixFileMode(cli.Temp.Path, (UnixFileMode)0x1ED); // 0755: let the owner reach its directory
            string state = cli.Temp.File("state");
            string keys = Path.Combine(state, "keys");
            System.IO.Directory.CreateDirectory(keys, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Tool("chown", "-R", $"{nobody}:{nobody}", state);
            string ini = cli.Temp.File("state.ini");
            File.WriteAllText(ini, $"[Directory]\nPath = {state}/lists.db\n[Keys]\nDirectory = {keys}\n");

            CliHarness.RunRaw("--config", ini, "list", "create", List, "--key-type", "p256").AssertOk();

            string key = Assert.Single(System.IO.Directory.GetFiles(keys));
            Assert.True(UnixFile.TryStat(key, out uint uid, out uint gid, out int mode));
            Assert.Equal((nobody, nobody, 0x180), (uid, gid, mode & 0x1FF)); // 0600, the owner's
            Assert.True(UnixFile.TryStat(Path.Combine(state, "lists.db"), out uid, out gid, out _));
            Assert.Equal((nobody, nobody), (uid, gid));
        }
        else
        {
            // Anyone else cannot give a file away: refused before a key is made, naming the way to run it.
            string ini = cli.Temp.File("root-keys.ini");
            File.WriteAllText(ini, File.ReadAllText(cli.ConfigFile).Replace($"Directory = {cli.KeysDirectory}", "Directory = /root", StringComparison.Ordinal));
            CliHarness.RunRaw("--config", ini, "list", "create", List, "--key-type", "p256")
                .AssertOneLine("key directory /root belongs to root: run this as root or as root (runuser -u root -- securelist ...)");
        }
    }

    private static void Tool(string name, params string[] args) => ExternalTool.MustRun(name, args);
}
