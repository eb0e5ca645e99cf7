using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Admin.Tests;

/// <summary>
/// <c>list export-key</c> / <c>list import-key</c>: host A's key files reach host B's key directory
/// (same directory database, another [Keys] Directory), and a bundle that does not belong is refused whole.
/// </summary>
[Collection(BackendCollection.Name)]
public sealed class ListKeyFileCommandTests(BackendFixture fixture)
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public void KeyFilesReachTheSecondHostWithMode0600AndAGoodBundleIsIdempotent()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        (string configB, string keysB) = SecondHost(cli);
        cli.Run("list", "create", "news@example.org", "--key-type", "p256").AssertOk();
        cli.Run("list", "rollover", "news@example.org").AssertOk();
        string bundle = cli.Temp.File("news.keys");

        CliResult exported = cli.Run("list", "export-key", "news@example.org", "--out", bundle).AssertOk();
        CliResult imported = CliHarness.RunRaw("list", "import-key", "--in", bundle, "--config", configB).AssertOk();

        Assert.Contains("wrote 2 key file(s)", exported.Output, StringComparison.Ordinal);
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(bundle));
        Assert.Contains("news@example.org: 2 key file(s) installed, 0 already present", imported.Output, StringComparison.Ordinal);
        string[] onA = [.. System.IO.Directory.GetFiles(cli.KeysDirectory).Select(Path.GetFileName).Order()!];
        string[] onB = [.. System.IO.Directory.GetFiles(keysB).Select(Path.GetFileName).Order()!];
        Assert.Equal(onA, onB);
        foreach (string name in onB)
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(cli.KeysDirectory, name)), File.ReadAllBytes(Path.Combine(keysB, name)));
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(Path.Combine(keysB, name)));
        }

        Assert.Contains("0 key file(s) installed, 2 already present", CliHarness.RunRaw("list", "import-key", "--in", bundle, "--config", configB).AssertOk().Output, StringComparison.Ordinal);
        cli.Run("list", "export-key", "news@example.org", "--out", bundle).AssertUserError("exists; not overwritten");
    }

    [Fact]
    public void BundlesThatDoNotBelongAreRefusedWholeAndWriteNothing()
    {
        using var cli = new CliHarness(fixture, "sqlite");
        (string configB, string keysB) = SecondHost(cli);
        cli.Run("list", "create", "news@example.org", "--key-type", "p256").AssertOk();
        cli.Run("list", "create", "other@example.org", "--key-type", "p256").AssertOk();
        string news = cli.Temp.File("news.keys");
        string other = cli.Temp.File("other.keys");
        cli.Run("list", "export-key", "news@example.org", "--out", news).AssertOk();
        cli.Run("list", "export-key", "other@example.org", "--out", other).AssertOk();
        string[] newsLines = File.ReadAllLines(news);
        string[] otherLines = File.ReadAllLines(other);

        // other's key under news's file name: the key does not match the certificate the directory holds.
        string swapped = Write(cli, "swapped.keys", [.. newsLines.Take(3), .. otherLines.Skip(3)]);
        CliHarness.RunRaw("list", "import-key", "--in", swapped, "--config", configB).AssertUserError("does not match the certificate");

        // A file name the directory does not know for the list, and one that tries to leave the key directory.
        string foreign = Write(cli, "foreign.keys", [.. newsLines.Take(2), otherLines[2], .. otherLines.Skip(3)]);
        CliHarness.RunRaw("list", "import-key", "--in", foreign, "--config", configB).AssertUserError("is not one of news@example.org's keys");
        string escaping = Write(cli, "escaping.keys", [.. newsLines.Take(2), "file: ../" + newsLines[2]["file: ".Length..], .. newsLines.Skip(3)]);
        CliHarness.RunRaw("list", "import-key", "--in", escaping, "--config", configB).AssertUserError("is not a plain key file name");
        string notABundle = Write(cli, "not.keys", ["-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"]);
        CliHarness.RunRaw("list", "import-key", "--in", notABundle, "--config", configB).AssertUserError("not a key bundle");
        string huge = Write(cli, "huge.keys", [.. newsLines.Take(3), new string('A', 5 << 20)]);
        CliHarness.RunRaw("list", "import-key", "--in", huge, "--config", configB).AssertUserError("bytes, not a key bundle");
        string empty = Write(cli, "empty.keys", [.. newsLines.Take(2)]);
        CliHarness.RunRaw("list", "import-key", "--in", empty, "--config", configB).AssertUserError("holds no key file");

        // A bundle others can read is refused before it is read.
        File.SetUnixFileMode(news, OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        CliHarness.RunRaw("list", "import-key", "--in", news, "--config", configB).AssertUserError("group or others can read it");

        Assert.Empty(System.IO.Directory.Exists(keysB) ? System.IO.Directory.GetFiles(keysB) : []);

        // A different file already under the name is never overwritten.
        File.SetUnixFileMode(news, OwnerReadWrite);
        System.IO.Directory.CreateDirectory(keysB, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string present = Path.Combine(keysB, newsLines[2]["file: ".Length..]);
        File.WriteAllText(present, "something else\n");
        File.SetUnixFileMode(present, OwnerReadWrite);
        CliHarness.RunRaw("list", "import-key", "--in", news, "--config", configB).AssertUserError("exists with different contents");
        Assert.Equal("something else\n", File.ReadAllText(present));
    }

    private static (string Config, string Keys) SecondHost(CliHarness cli)
    {
        string keys = cli.Temp.File("keys-b");
        string config = cli.Temp.File("milter-b.ini");
        File.WriteAllText(config, File.ReadAllText(cli.ConfigFile).Replace($"Directory = {cli.KeysDirectory}\n", $"Directory = {keys}\n", StringComparison.Ordinal));
        return (config, keys);
    }

    private static string Write(CliHarness cli, string name, IEnumerable<string> lines)
    {
        string path = cli.Temp.File(name);
        File.WriteAllLines(path, lines);
        File.SetUnixFileMode(path, OwnerReadWrite);
        return path;
    }
}
