using MilterSecureList.EndToEnd.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// Postfix delivers every RFC 5321 spelling of the list address to the list. Through a real Postfix, each
/// spelling gets the verdict of the plain address: plaintext is refused at end of DATA, an encrypted post is
/// expanded to the members, and nothing reaches the list address itself.
/// </summary>
[Collection(ListWorldCollection.Name)]
[Trait("Category", "EndToEnd")]
public sealed class AddressSpellingTests(ListWorld world)
{
    public static TheoryData<string> Spellings { get; } =
    [
        ListWorld.Crypto,
        "\"crypto\"@" + ListWorld.Domain,
        "\"cry\\pto\"@" + ListWorld.Domain,
        "\"crypto+x\"@" + ListWorld.Domain,
        "crypto@" + ListWorld.Domain + ".",
        "CRYPTO@" + ListWorld.Domain.ToUpperInvariant(),
        "crypto+x@" + ListWorld.Domain,
    ];

    private const string PlainRefusal = "550 5.7.1 <crypto@lists.e2e.test> accepts only S/MIME mail encrypted to the list certificate; get the certificate from the list owner <owner@e2e.test> and send again encrypted";

    [Theory]
    [MemberData(nameof(Spellings))]
    public async Task Plaintext_to_any_spelling_of_the_list_is_refused_like_the_plain_address(string rcpt)
    {
        string subject = $"spelling plain {Guid.NewGuid():N}";
        string post = await world.PlainPostAsync(world["alice"].Address, ListWorld.Crypto, subject, "not encrypted");
        Swaks s = await world.SendAsync(world["alice"].Address, [rcpt], post);
        Assert.NotEqual(0, s.ExitCode);
        Assert.Equal(PlainRefusal, PolicyTests.ReplyTo(s, "."));
        await world.Postfix.WaitForQueueEmptyAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(world.ReceivedNow(subject));
    }

    [Theory]
    [MemberData(nameof(Spellings))]
    public async Task An_encrypted_post_to_any_spelling_is_expanded_to_the_members(string rcpt)
    {
        string subject = $"spelling encrypted {Guid.NewGuid():N}";
        byte[] entity = Smime.Entity("spelt " + rcpt);
        string post = await world.OpensslPostAsync(world["mallory"].Address, ListWorld.Crypto, subject, entity, [world.ListCert(ListWorld.Crypto)], "-aes256");
        Swaks s = await world.SendAsync(world["mallory"].Address, [rcpt], post);
        Assert.True(s.Accepted, s.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        List<string> rcpts = [.. got.SelectMany(m => m.Recipients).Select(r => r.Replace("TO:", "", StringComparison.OrdinalIgnoreCase).Trim('<', '>')).Order()];
        Assert.Equal([.. new[] { "alice", "bob", "carol", "gina", "nina" }.Select(n => world[n].Address).Order()], rcpts);
        Assert.Equal(entity, await world.OpensslDecryptAsync(got[0], world["carol"]));
    }

    [Theory]
    [InlineData("cry\\pto@" + ListWorld.Domain)] // Postfix takes it; cry"pto"@, "crypto"x@ and crypto@domain.. it refuses itself (501)
    [InlineData("cry\\pto+x@" + ListWorld.Domain)]
    public async Task A_malformed_spelling_of_the_list_is_refused_at_rcpt_and_nothing_is_queued(string rcpt)
    {
        string subject = $"spelling malformed {Guid.NewGuid():N}";
        string post = await world.PlainPostAsync(world["alice"].Address, ListWorld.Crypto, subject, "not encrypted");
        Swaks s = await world.SendAsync(world["alice"].Address, [rcpt], post);
        Assert.False(s.Accepted, s.ToString());
        Assert.Equal("553 5.1.3 malformed recipient address; write the list address as <crypto@lists.e2e.test>", PolicyTests.ReplyTo(s, "RCPT TO"));
        await world.Postfix.WaitForQueueEmptyAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(world.ReceivedNow(subject));
    }
}
