using MilterSecureList.Directory;

namespace MilterSecureList.Filter.Tests;

/// <summary>The list option <c>ec-shared-key</c> switches EC members back to one ephemeral key each (the engine side is
/// proven in the Cms tests: SharedKeyAgreementTests).</summary>
public class ListPolicyEcSharedKeyTests
{
    [Theory]
    [InlineData(null, true)]
    [InlineData("yes", true)]
    [InlineData("no", false)]
    public void EcSharedKeyOptionSetsTheKeyAgreementMode(string? value, bool shared)
    {
        IReadOnlyDictionary<string, string> options = value is null
            ? MailingList.NoOptions
            : new Dictionary<string, string> { [ListOptionKeys.EcSharedKey] = value };
        var list = new MailingList("crypto@lists.example.org", ListMode.Rekey, "owner@example.org", PostingPolicy.Open, options);

        Assert.Equal(shared, ListPolicy.For(list, new PolicyOptions()).ShareKeyAgreement);
        Assert.Null(ListOptionKeys.Check(ListOptionKeys.EcSharedKey, "no"));
        Assert.NotNull(ListOptionKeys.Check(ListOptionKeys.EcSharedKey, "sometimes"));
    }
}
