namespace MilterSecureList.Directory.Tests;

public sealed class OptionsTests
{
    private static Func<string, string?> Ini(params (string Key, string Value)[] values) =>
        key => values.FirstOrDefault(v => v.Key == key).Value;

    [Fact]
    public void DefaultsAreTheDocumentedOnes()
    {
        var directory = DirectoryOptions.Bind(Ini(), []);
        var keys = KeysOptions.Bind(Ini());

        Assert.Equal(DirectoryProvider.Sqlite, directory.Provider);
        Assert.Equal("/var/lib/securelist/lists.db", directory.Path);
        Assert.Equal(2, directory.CacheRefreshSeconds);
        Assert.Equal("/var/lib/securelist/keys", keys.Directory);
        Assert.Null(keys.PassphraseFile);
        Assert.Empty(directory.Validate());
        Assert.Empty(keys.Validate());
    }

    [Fact]
    public void BindParsesEveryKey()
    {
        var problems = new List<string>();
        var directory = DirectoryOptions.Bind(Ini(("Provider", " PostgreSQL "), ("ConnectionString", "Host=db"), ("CacheRefreshSeconds", "5")), problems);
        var keys = KeysOptions.Bind(Ini(("Directory", "/srv/keys"), ("PassphraseFile", "/etc/securelist/passphrase")));

        Assert.Empty(problems);
        Assert.Equal(DirectoryProvider.Postgres, directory.Provider);
        Assert.Equal("Host=db", directory.ConnectionString);
        Assert.Equal(5, directory.CacheRefreshSeconds);
        Assert.Equal("/srv/keys", keys.Directory);
        Assert.Equal("/etc/securelist/passphrase", keys.PassphraseFile);
    }

    [Theory]
    [InlineData("Provider", "oracle", "[Directory] Provider: 'oracle' is not one of sqlite, postgres")]
    [InlineData("CacheRefreshSeconds", "2s", "[Directory] CacheRefreshSeconds: '2s' is not a whole number of seconds")]
    [InlineData("CacheRefreshSeconds", "6", "[Directory] CacheRefreshSeconds: 6 is outside 1..5 (changes must be seen within 5 s)")]
    [InlineData("Path", "", "[Directory] Path: required when Provider = sqlite")]
    public void BadValuesAreReportedWithSectionAndKey(string key, string value, string expected)
    {
        var problems = new List<string>();
        DirectoryOptions options = DirectoryOptions.Bind(Ini((key, value)), problems);
        problems.AddRange(options.Validate());

        Assert.Equal([expected], problems);
    }

    [Fact]
    public void KeysDirectoryMustBeAbsolute()
    {
        Assert.Equal(["[Keys] Directory: 'keys' must be an absolute path"], KeysOptions.Bind(Ini(("Directory", "keys"))).Validate());
    }

    [Theory]
    [InlineData("alice@example.org", true)]
    [InlineData("a.b+c@sub.example.org", true)]
    [InlineData("alice", false)]
    [InlineData("@example.org", false)]
    [InlineData("alice@", false)]
    [InlineData("a@b@example.org", false)]
    [InlineData("alice @example.org", false)]
    [InlineData("<alice@example.org>", false)]
    [InlineData("alice@example..org", false)]
    public void AddressSyntax(string address, bool valid)
    {
        Assert.Equal(valid, EmailAddress.IsValid(address));
    }
}
