using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Directory;
using static MilterSecureList.Filter.Tests.FilterTestKit;

namespace MilterSecureList.Filter.Tests;

/// <summary>
/// Every spelling of an address that Postfix rewrites to the list address must give the list address here too,
/// and a spelling that does not parse must never pass a list as "not a list".
/// </summary>
public sealed class EnvelopeAddressTests
{
    private const string List = "crypto@lists.example.org";

    [Theory]
    [InlineData("<crypto@lists.example.org>")]
    [InlineData("crypto@lists.example.org")]
    [InlineData("  <crypto@lists.example.org>  ")]
    [InlineData("<\"crypto\"@lists.example.org>")]
    [InlineData("<\"cry\\pto\"@lists.example.org>")]
    [InlineData("<\"\\c\\r\\y\\p\\t\\o\"@lists.example.org>")]
    [InlineData("<\"crypto+x\"@lists.example.org>")]
    [InlineData("<\"cry\\pto+x\"@lists.example.org>")]
    [InlineData("<crypto@lists.example.org.>")]
    [InlineData("<CRYPTO@LISTS.EXAMPLE.ORG>")]
    [InlineData("<\"CRYPTO\"@Lists.Example.Org.>")]
    [InlineData("<crypto+x@lists.example.org>")]
    [InlineData("<crypto+@lists.example.org>")]
    [InlineData("<@relay.example.net:crypto@lists.example.org>")]
    [InlineData("<@a.example,@b.example:\"crypto\"@lists.example.org.>")]
    public void EverySpellingOfTheListIsTheListAddress(string raw)
    {
        Assert.True(EnvelopeAddress.TryCanonical(raw, "+", out string canonical), raw);
        Assert.Equal(List, canonical);
        Assert.Equal(List, EnvelopeAddress.Canonical(raw));
    }

    [Theory]
    [InlineData("<\"cry pto\"@lists.example.org>", "cry pto@lists.example.org")]
    [InlineData("<\"crypto.\"@lists.example.org>", "crypto.@lists.example.org")]
    [InlineData("<\"a\\\"b\"@example.org>", "a\"b@example.org")]
    [InlineData("<\"a@b\"@example.org>", "a@b@example.org")]
    [InlineData("<user@[192.0.2.1]>", "user@[192.0.2.1]")]
    [InlineData("<cryptox@lists.example.org>", "cryptox@lists.example.org")]
    [InlineData("<+crypto@lists.example.org>", "+crypto@lists.example.org")]
    public void OtherMailboxesStayDistinct(string raw, string expected)
    {
        Assert.True(EnvelopeAddress.TryCanonical(raw, "+", out string canonical), raw);
        Assert.Equal(expected, canonical);
    }

    [Fact]
    public void OnlyTheConfiguredDelimitersCutAnExtension()
    {
        Assert.Equal("crypto+x@lists.example.org", EnvelopeAddress.Canonical("<crypto+x@lists.example.org>", "-"));
        Assert.Equal(List, EnvelopeAddress.Canonical("<crypto-x@lists.example.org>", "-+"));
        Assert.Equal(List, EnvelopeAddress.Canonical("<\"crypto-x\"@lists.example.org>", "-"));
        Assert.Equal("crypto+x@lists.example.org", EnvelopeAddress.Canonical("<\"crypto+x\"@lists.example.org>", ""));
    }

    [Theory]
    [InlineData("<>")]
    [InlineData("")]
    [InlineData("postmaster")]
    [InlineData("<postmaster>")]
    public void NullSenderAndBareLocalPartsAreWellFormed(string raw)
    {
        Assert.True(EnvelopeAddress.TryCanonical(raw, "+", out string canonical), raw);
        Assert.DoesNotContain('@', canonical);
    }

    [Theory]
    [InlineData("<\"crypto@lists.example.org>", List)] // unbalanced quote
    [InlineData("<\"crypto\\\"@lists.example.org>", List)] // the closing quote escaped
    [InlineData("<\"crypto@lists.example.org\\", List)] // backslash at the end
    [InlineData("<crypto@lists.example.org", List)] // unbalanced bracket
    [InlineData("crypto@lists.example.org>", List)]
    [InlineData("<cry\"pto\"@lists.example.org>", List)] // quote inside an atom
    [InlineData("<\"cry\"pto@lists.example.org>", List)] // text after the quoted string
    [InlineData("<cry\\pto@lists.example.org>", List)] // quoted pair outside quotes
    [InlineData("<crypto\0@lists.example.org>")]
    [InlineData("<\"crypto\0\"@lists.example.org>")]
    [InlineData("<\"cryp\r\nto\"@lists.example.org>")]
    [InlineData("<crypto@lists.example.org\r\n>", List)]
    [InlineData("<crypto@lists.exa\nmple.org>")]
    [InlineData("<crypto@lists..example.org>")]
    [InlineData("<crypto@lists.example.org..>", List)]
    [InlineData("<.crypto@lists.example.org>")]
    [InlineData("<cry..pto@lists.example.org>")]
    [InlineData("<@relay.example.net crypto@lists.example.org>")] // route without its colon
    [InlineData("<@:crypto@lists.example.org>", List)] // empty route
    [InlineData("<@relay..net:crypto@lists.example.org>", List)]
    [InlineData("<crypto@>")]
    [InlineData("<@lists.example.org>")]
    public void MalformedAddressesAreFlaggedAndTheBestGuessIsTheListMeant(string raw, string? guess = null)
    {
        Assert.False(EnvelopeAddress.TryCanonical(raw, "+", out string canonical), raw);
        Assert.NotNull(canonical);
        if (guess is not null)
        {
            Assert.Equal(guess, canonical);
        }
    }

    [Fact]
    public void VeryLongAddressesAreMalformedAndParsedInLinearTime()
    {
        string local = new('a', 200_000);
        Assert.False(EnvelopeAddress.TryCanonical($"<{local}@lists.example.org>", "+", out string canonical));
        Assert.Equal($"{local}@lists.example.org", canonical);

        string quoted = "\"" + string.Concat(Enumerable.Repeat("\\\"", 100_000)) + "\"@x.example";
        Assert.False(EnvelopeAddress.TryCanonical(quoted, "+", out canonical));
        Assert.Equal(new string('"', 100_000) + "@x.example", canonical);

        string ats = string.Concat(Enumerable.Repeat("@", 100_000));
        Assert.False(EnvelopeAddress.TryCanonical(ats, "+", out _));
        Assert.False(EnvelopeAddress.TryCanonical("\"" + ats, "+", out _));
    }

    [Fact]
    public void AnAddressUpToTheLimitIsWellFormed()
    {
        string domain = string.Join('.', Enumerable.Repeat(new string('d', 63), 4));
        string raw = $"<{new string('l', 64)}@{domain}>";
        Assert.True(raw.Length <= EnvelopeAddress.MaxLength);
        Assert.True(EnvelopeAddress.TryCanonical(raw, "+", out _));
    }

    private static ListMessageProcessor Processor() =>
        new(NewDirectory(List, ListMode.Rekey, PostingPolicy.MembersOnly, null, Member("alice@example.org")), new PolicyOptions(), new RecordingOwnerNotifier(), NullLogger.Instance);

    [Theory]
    [InlineData("<\"crypto\"@lists.example.org>")]
    [InlineData("<\"cry\\pto\"@lists.example.org>")]
    [InlineData("<\"crypto+x\"@lists.example.org>")]
    [InlineData("<crypto@lists.example.org.>")]
    [InlineData("<CRYPTO@LISTS.EXAMPLE.ORG>")]
    [InlineData("<@relay.example.net:crypto@lists.example.org>")]
    public async Task EverySpellingGetsTheVerdictOfThePlainAddress(string rcpt)
    {
        ListMessageProcessor p = Processor();
        RecipientCheck outsider = p.CheckRecipient("<dave@example.com>", rcpt);
        Assert.True(outsider.IsList);
        Assert.Equal("550 5.7.1", $"{outsider.Refusal!.Code} {outsider.Refusal.EnhancedCode}");
        Assert.Null(p.CheckRecipient("<\"Alice\"@Example.org.>", rcpt).Refusal);

        using FilterDecision plain = await p.ProcessAsync(new ListMessage("<alice@example.org>", [rcpt], PlainHeaders, new MemoryStream("hi\r\n"u8.ToArray()), "Q1"));
        Assert.Equal(FilterVerdictKind.Reject, plain.Kind);
        Assert.Equal("550 5.7.1", $"{plain.Reply!.Code} {plain.Reply.EnhancedCode}");
        Assert.Contains($"<{List}>", plain.Reply.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<\"crypto@lists.example.org>")]
    [InlineData("<\"crypto@lists.example.org\\>")]
    [InlineData("<cry\"pto\"@lists.example.org>")]
    public async Task AMalformedSpellingOfAListIsRefusedAtRcptAndAtEndOfMessage(string rcpt)
    {
        ListMessageProcessor p = Processor();
        RecipientCheck check = p.CheckRecipient("<alice@example.org>", rcpt);
        Assert.True(check.IsList);
        Assert.Equal("553 5.1.3", $"{check.Refusal!.Code} {check.Refusal.EnhancedCode}");
        Assert.Contains($"<{List}>", check.Refusal.Text, StringComparison.Ordinal);

        using FilterDecision d = await p.ProcessAsync(new ListMessage("<alice@example.org>", ["<bob@example.org>", rcpt], PlainHeaders, new MemoryStream("hi\r\n"u8.ToArray()), "Q1"));
        Assert.Equal(FilterVerdictKind.Reject, d.Kind);
        Assert.Equal("553 5.1.3", $"{d.Reply!.Code} {d.Reply.EnhancedCode}");
    }

    [Fact]
    public void AMalformedAddressThatIsNoListIsLeftToPostfix()
    {
        Assert.False(Processor().CheckRecipient("<alice@example.org>", "<\"bob@example.org>").IsList);
    }
}
