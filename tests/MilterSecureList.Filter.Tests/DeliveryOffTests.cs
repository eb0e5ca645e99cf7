using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Directory;
using static MilterSecureList.Filter.Tests.FilterTestKit;

namespace MilterSecureList.Filter.Tests;

/// <summary>
/// A member whose delivery is switched off (<c>securelist member set --delivery off</c>) stays on the list but gets
/// no copy: no ADDRCPT for the address and, for encrypted posts, no RecipientInfo, so the message on the wire
/// cannot be opened with that member's key either.
/// </summary>
public sealed class DeliveryOffTests
{
    private const string List = "crypto@lists.example.org";
    private const string Other = "board@lists.example.org";

    /// <summary>Dave (not a member) posts to <paramref name="rcpts"/>: encrypted when <paramref name="der"/> is given, else plain.</summary>
    private static Task<FilterDecision> PostAsync(FakeDirectory directory, string[] rcpts, byte[]? der = null)
    {
        var message = new ListMessage("<dave@example.com>", rcpts, der is null ? PlainHeaders : SmimeHeaders,
            der is null ? new MemoryStream("hello\r\n"u8.ToArray()) : Base64Body(der), "Q1");
        return new ListMessageProcessor(directory, new PolicyOptions(), new RecordingOwnerNotifier(), NullLogger.Instance).ProcessAsync(message);
    }

    [Fact]
    public async Task AnEncryptedPostSkipsTheMemberWithDeliveryOffAndCarriesNoKeyForIt()
    {
        FakeDirectory dir = NewDirectory(List, members: [Member("alice@example.org"), Member("bob@example.org", delivery: false), Member("carol@example.net")]);

        using FilterDecision d = await PostAsync(dir, [$"<{List}>"], Encrypt(List));

        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(["alice@example.org", "carol@example.net"], d.AddRecipients);
        Assert.Equal(2, d.MembersRekeyed);
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "alice@example.org"));
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "carol@example.net"));
        Assert.ThrowsAny<CryptographicException>(() => DecryptAs(d.NewBody!, "bob@example.org"));
    }

    [Fact]
    public async Task APlaintextPassListDoesNotAddTheMemberWithDeliveryOff()
    {
        var options = new Dictionary<string, string> { [ListOptionKeys.Plaintext] = "pass" };
        FakeDirectory dir = NewDirectory(List, options: options, members: [Member("alice@example.org", delivery: false), Member("bob@example.org")]);

        using FilterDecision d = await PostAsync(dir, [$"<{List}>"]);

        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(["bob@example.org"], d.AddRecipients);
        Assert.Equal([$"<{List}>"], d.DeleteRecipients);
    }

    [Fact]
    public async Task AListWhoseEveryMemberHasDeliveryOffIsDeferredNotDeliveredToNobody()
    {
        FakeDirectory dir = NewDirectory(List, members: [Member("alice@example.org", delivery: false), Member("bob@example.org", delivery: false)]);

        using FilterDecision d = await PostAsync(dir, [$"<{List}>"], Encrypt(List));

        Assert.Equal(FilterVerdictKind.Tempfail, d.Kind);
        Assert.Empty(d.AddRecipients);
        Assert.Null(d.NewBody);
    }

    [Fact]
    public async Task DeliveryOffOnOneListDoesNotHideTheMemberOnAnotherListOfTheSamePost()
    {
        FakeDirectory dir = NewDirectory(List, members: [Member("alice@example.org"), Member("bob@example.org", delivery: false)]);
        Add(dir, Other, members: [Member("bob@example.org")]);

        using FilterDecision d = await PostAsync(dir, [$"<{List}>", $"<{Other}>"], Encrypt(List, Other));

        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(["alice@example.org", "bob@example.org"], d.AddRecipients);
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "bob@example.org"));
    }
}
