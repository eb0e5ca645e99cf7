using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Directory.Tests;

[Collection(BackendCollection.Name)]
public sealed class DirectoryServicesTests(BackendFixture fixture)
{
    public static TheoryData<string> Backends => BackendFixture.Names;

    [Theory]
    [MemberData(nameof(Backends))]
    public void OpenServesListsAndRefusesAnInsecureKeyDirectory(string backend)
    {
        using var env = new DirectoryEnvironment(fixture, backend);
        env.Admin.CreateList("news@example.org", ListMode.Rekey, null, ListKeyType.P256);

        using (DirectoryServices services = DirectoryServices.Open(env.Options, env.Keys, TimeProvider.System))
        {
            Assert.True(services.Directory.TryGetList("news@example.org", out _));
            Assert.Single(services.Directory.GetListKeys("news@example.org"));
        }

        File.SetUnixFileMode(env.Keys.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        DirectoryException error = Assert.Throws<DirectoryException>(() => DirectoryServices.Open(env.Options, env.Keys, TimeProvider.System));
        Assert.Equal(DirectoryError.InsecurePermissions, error.Reason);
    }

    [Fact]
    public void OpenRefusesInvalidOptionsNamingSectionAndKey()
    {
        DirectoryException error = Assert.Throws<DirectoryException>(() => DirectoryServices.Open(
            new DirectoryOptions { Provider = DirectoryProvider.Postgres },
            new KeysOptions(),
            TimeProvider.System));

        Assert.Equal("[Directory] ConnectionString: required when Provider = postgres", error.Message);
    }

    [Theory]
    [MemberData(nameof(Backends))]
    public void AnUnreachableDatabaseKeepsCachedAnswersAndFailsUncachedOnes(string backend)
    {
        using var env = new DirectoryEnvironment(fixture, backend);
        env.Admin.CreateList("cached@example.org", ListMode.Rekey, null, ListKeyType.P256);
        env.Admin.CreateList("cold@example.org", ListMode.Rekey, null, ListKeyType.P256);
        using var cache = new CachingListDirectory(env.Directory, TimeSpan.FromHours(1), TimeProvider.System);
        ExpandedList cached = cache.Expand("cached@example.org");

        env.Dialect.Down = true;

        Assert.False(cache.Refresh());
        Assert.Contains("connection refused (test)", cache.LastRefreshError, StringComparison.Ordinal);
        Assert.Same(cached, cache.Expand("cached@example.org"));
        DirectoryException error = Assert.Throws<DirectoryException>(() => cache.Expand("cold@example.org"));
        Assert.Equal(DirectoryError.Unavailable, error.Reason);
        Assert.False(error.IsUserError);

        env.Dialect.Down = false;
        Assert.Empty(cache.Expand("cold@example.org").Members); // the failure was not cached
        cache.Refresh();
        Assert.Null(cache.LastRefreshError);
    }
}
