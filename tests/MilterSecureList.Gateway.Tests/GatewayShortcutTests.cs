using System.Security.Cryptography;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Storage;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// What the gateway keeps in memory or skips for speed (docs/design.md, "Gateway performance") must not change what
/// it does: directory lookups follow the change counter within the refresh period, a harvest that would change
/// nothing is not written again but one after a change is, text already in canonical form is signed as MimeKit would
/// write it, and the faster base64 writes what the framework writes.
/// </summary>
public sealed class GatewayShortcutTests : IDisposable
{
    private static readonly TimeSpan s_refresh = TimeSpan.FromSeconds(2);
    private readonly GatewayWorld _world = new();
    private readonly SqlDirectoryStore _lists;
    private readonly StepClock _clock = new();
    private readonly StoreGatewayDirectory _cached;

    public GatewayShortcutTests()
    {
        _lists = SqlDirectoryStore.Open(new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = _world.Temp.File("db/lists.db") }, TimeProvider.System);
        _cached = new StoreGatewayDirectory(_world.Store, _world.Keys, null, new DirectoryChangeCounter(_lists.GetGeneration, s_refresh, _clock));
    }

    public void Dispose()
    {
        _cached.Dispose();
        _lists.Dispose();
        _world.Dispose();
    }

    [Fact]
    public void CachedLookupsFollowACliChangeOnceTheRefreshPeriodHasPassed()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Assert.Null(_cached.FindCertificate("bob@partner.example", now));
        Assert.NotNull(_cached.FindUser("ALICE@gw.example"));

        _world.Know(_world.Bob);
        _world.Administration.RemoveUser("alice@gw.example");
        // Within the refresh period the answers come from memory, as the list cache's do.
        Assert.Null(_cached.FindCertificate("bob@partner.example", now));
        Assert.NotNull(_cached.FindUser("alice@gw.example"));

        _clock.Advance(s_refresh);
        Assert.Equal(CertificateInspector.Sha256Fingerprint(_world.Bob.Certificate), _cached.FindCertificate("bob@partner.example", now)!.Fingerprint);
        Assert.Null(_cached.FindUser("alice@gw.example"));
    }

    [Fact]
    public void OnlyLookupsAlreadyInMemoryAndNotDueForARefreshAreAnsweredInline()
    {
        // Nothing read yet: the counter is due, the addresses unknown.
        Assert.False(_cached.AnswersFromMemory("alice@gw.example", certificate: false));
        Assert.NotNull(_cached.FindUser("alice@gw.example"));
        Assert.True(_cached.AnswersFromMemory("ALICE@gw.example", certificate: true)); // a user needs no certificate

        // A correspondent: the user lookup (null) and, for an outbound recipient, the certificate lookup.
        Assert.Null(_cached.FindUser("bob@partner.example"));
        Assert.True(_cached.AnswersFromMemory("bob@partner.example", certificate: false));
        Assert.False(_cached.AnswersFromMemory("bob@partner.example", certificate: true));
        Assert.Null(_cached.FindCertificate("bob@partner.example", DateTimeOffset.UtcNow));
        Assert.True(_cached.AnswersFromMemory("bob@partner.example", certificate: true));

        // Within a second of the refresh the next lookup may read the database: not inline.
        _clock.Advance(s_refresh - TimeSpan.FromSeconds(1.5));
        Assert.True(_cached.AnswersFromMemory("alice@gw.example", certificate: false));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(_cached.AnswersFromMemory("alice@gw.example", certificate: false));

        // After SIGHUP (or a write of our own) the counter is read again first: not inline either.
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.NotNull(_cached.FindUser("alice@gw.example"));
        Assert.True(_cached.AnswersFromMemory("alice@gw.example", certificate: false));
        _cached.Invalidate();
        Assert.False(_cached.AnswersFromMemory("alice@gw.example", certificate: false));

        // Without a change counter (the CLI) every lookup reads the database.
        using var uncached = new StoreGatewayDirectory(_world.Store, _world.Keys);
        Assert.NotNull(uncached.FindUser("alice@gw.example"));
        Assert.False(uncached.AnswersFromMemory("alice@gw.example", certificate: false));
    }

    [Fact]
    public void SighupReadsTheDirectoryAgainAtOnce()
    {
        Assert.Null(_cached.FindCertificate("bob@partner.example", DateTimeOffset.UtcNow));
        _world.Know(_world.Bob);
        _cached.Invalidate();
        Assert.NotNull(_cached.FindCertificate("bob@partner.example", DateTimeOffset.UtcNow));
    }

    [Fact]
    public void TheCertificateToEncryptToIsChosenAtTheTimeOfEachLookup()
    {
        _world.Know(_world.Bob);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Assert.NotNull(_cached.FindCertificate("bob@partner.example", now));
        // The cached certificates are the same, the clock is not: past its expiry none is offered.
        Assert.Null(_cached.FindCertificate("bob@partner.example", _world.Bob.Certificate.NotAfter.ToUniversalTime().AddDays(1)));
    }

    [Fact]
    public void AnUnreadableChangeCounterFailsTheLookupSoTheMessageIsTempfailed()
    {
        using var broken = new StoreGatewayDirectory(_world.Store, _world.Keys, null, new DirectoryChangeCounter(
            () => throw new DirectoryException(DirectoryError.Unavailable, "database is down"), s_refresh, _clock));
        DirectoryException e = Assert.Throws<DirectoryException>(() => broken.FindUser("alice@gw.example"));
        Assert.Equal(DirectoryError.Unavailable, e.Reason);
    }

    [Fact]
    public void AHarvestThatWouldChangeNothingIsNotWrittenAgainButOneAfterAChangeIs()
    {
        byte[] capabilities = SmimeCapabilities.Ours;
        Assert.Equal(HarvestOutcome.Added, _cached.Harvest("bob@partner.example", _world.Bob.Certificate, capabilities));
        long generation = _lists.GetGeneration();

        Assert.Equal(HarvestOutcome.Refreshed, _cached.Harvest("bob@partner.example", _world.Bob.Certificate, capabilities));
        Assert.Equal(generation, _lists.GetGeneration());

        // New capabilities are news: written.
        Assert.Equal(HarvestOutcome.Refreshed, _cached.Harvest("bob@partner.example", _world.Bob.Certificate, null));
        Assert.Equal(HarvestOutcome.Refreshed, _cached.Harvest("bob@partner.example", _world.Bob.Certificate, [.. capabilities[..^1], 0]));
        Assert.True(_lists.GetGeneration() > generation);

        // The operator removes the certificate; once the change is seen, the next signature harvests it again.
        Assert.Equal(1, _world.Store.RemoveCertificates("bob@partner.example", null));
        _clock.Advance(s_refresh);
        Assert.Equal(HarvestOutcome.Added, _cached.Harvest("bob@partner.example", _world.Bob.Certificate, capabilities));
        Assert.Single(_world.Store.GetCertificates("bob@partner.example"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(56)]
    [InlineData(57)]
    [InlineData(58)]
    [InlineData(114)]
    [InlineData(100_001)]
    public void Base64LinesAreTheFrameworksLineBrokenBase64(int length)
    {
        byte[] data = RandomNumberGenerator.GetBytes(length);
        string expected = Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks) + "\r\n";
        Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(MessageText.Base64Lines(data)));
    }

    public static TheoryData<string> CanonicalText() => new()
    {
        "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\n\r\n\tindented\r\n" + string.Concat(Enumerable.Repeat(new string('x', 76) + "\r\n", 3)),
        "Content-Type: text/plain;\n\tcharset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n>From the start\r\n.\r\n",
        "Content-Type: TEXT/PLAIN\r\nContent-Disposition: inline\r\n\r\n",
    };

    [Theory]
    [MemberData(nameof(CanonicalText))]
    public void PlainSevenBitTextIsSignedAsMimeKitWouldWriteIt(string entity)
    {
        MimeEntityBytes parsed = MimeEntityBytes.Parse(System.Text.Encoding.ASCII.GetBytes(entity));
        Assert.True(SmimeSigner.IsSevenBitPlainText(parsed.Headers, parsed.Body));
        Assert.Equal(
            System.Text.Encoding.ASCII.GetString(SmimeSigner.CanonicalizeWithMimeKit([.. parsed.Headers], parsed.Body)),
            System.Text.Encoding.ASCII.GetString(SmimeSigner.Canonicalize(parsed)));
    }

    [Theory]
    [InlineData("Content-Type: text/plain\r\n\r\nline with trailing space \r\n")]
    [InlineData("Content-Type: text/plain\r\n\r\nFrom here on\r\n")]
    [InlineData("Content-Type: text/plain; charset=utf-8\r\n\r\nGr\u00fc\u00dfe\r\n")]
    [InlineData("Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nplain\r\n")]
    [InlineData("Content-Type: text/plainish\r\n\r\nplain\r\n")]
    [InlineData("Content-Type: text/html\r\n\r\nplain\r\n")]
    [InlineData("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n")]
    [InlineData("Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nplain\r\n")]
    [InlineData("Content-Type: text/plain\r\n\r\nno final line end")]
    [InlineData("Content-Type: text/plain\r\n\r\nbare\rcarriage return\r\n")]
    [InlineData("Content-Type: text/plain\r\n\r\na line of 77 octets xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n")]
    public void AnythingElseGoesThroughMimeKit(string entity)
    {
        MimeEntityBytes parsed = MimeEntityBytes.Parse(System.Text.Encoding.Latin1.GetBytes(entity));
        Assert.False(SmimeSigner.IsSevenBitPlainText(parsed.Headers, parsed.Body));
    }

    /// <summary>A clock whose timestamps move only when the test says so.</summary>
    private sealed class StepClock : TimeProvider
    {
        private long _ticks = 1_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
