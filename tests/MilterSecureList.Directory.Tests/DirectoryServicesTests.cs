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
            Assert.True(services.Cache.TryGetList("news@example.org", out _));
            Assert.Single(services.Cache.GetListKeys("news@example.org"));
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

    [Theory]
    [MemberData(nameof(Backends))]
    public void CachedAnswersStopOnceTheDatabaseHasBeenUnreachableLongerThanTheStaleLimit(string backend)
    {
        using var env = new DirectoryEnvironment(fixture, backend);
        env.Admin.CreateList("cached@example.org", ListMode.Rekey, null, ListKeyType.P256);
        using var cache = new CachingListDirectory(env.Directory, TimeSpan.FromSeconds(2), env.Time);
        ExpandedList cached = cache.Expand("cached@example.org");
        IReadOnlyList<ListKeyPair> keys = cache.GetListKeys("cached@example.org");
        Assert.Equal(TimeSpan.FromMinutes(1), CachingListDirectory.StaleLimitFor(TimeSpan.FromSeconds(2)));
        Assert.Equal(TimeSpan.FromMinutes(10), CachingListDirectory.StaleLimitFor(TimeSpan.FromMinutes(1)));

        env.Dialect.Down = true;
        Assert.False(cache.Refresh());
        env.Time.Advance(TimeSpan.FromSeconds(59));

        Assert.Same(cached, cache.Expand("cached@example.org")); // a database restart is ridden out
        env.Time.Advance(TimeSpan.FromSeconds(2));
        DirectoryException stale = Assert.Throws<DirectoryException>(() => cache.Expand("cached@example.org"));
        Assert.Equal(DirectoryError.Unavailable, stale.Reason);
        Assert.Contains("longer than the 60 s cached lists are served for (", stale.Message, StringComparison.Ordinal);
        Assert.Throws<DirectoryException>(() => cache.TryGetList("cached@example.org", out _));
        Assert.Throws<DirectoryException>(() => cache.GetListKeys("cached@example.org"));

        env.Dialect.Down = false;
        Assert.False(cache.Refresh()); // nothing changed meanwhile: the same snapshot, served again
        Assert.Same(cached, cache.Expand("cached@example.org"));
        Assert.Same(keys, cache.GetListKeys("cached@example.org"));
    }
}
