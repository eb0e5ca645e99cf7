using System.Security.Cryptography.Pkcs;
using MilterSecureList.EndToEnd.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// The crypto list (five members) with [Policy] MembersPerCopy = 2 and CopyServer = this Postfix: the split path of
/// bench/lists/large.sh (100,000 members in copies of 1,000) at a size the test suite can afford.
/// </summary>
public sealed class SplitWorld : ListWorld
{
    public const int PerCopy = 2;

    protected override bool Full => false;

    protected override Task CreateMoreAsync() =>
        File.AppendAllTextAsync(Config, $"[Policy]\nMembersPerCopy = {PerCopy}\nCopyServer = 127.0.0.1:{Postfix.SmtpPort}\n");
}

/// <summary>
/// A post to more members than MembersPerCopy reaches every member exactly once, in separate messages (queue files),
/// each carrying only its own members' RecipientInfos, each readable by its members alone.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class SplitCopiesTests(SplitWorld world) : IClassFixture<SplitWorld>
{
    private static readonly string[] CryptoMembers = ["alice", "bob", "carol", "gina", "nina"];

    private static string Addr(string raw) => raw.Replace("TO:", "", StringComparison.OrdinalIgnoreCase).Trim('<', '>');

    [Fact]
    public async Task A_post_to_five_members_in_copies_of_two_reaches_each_member_once_readable_by_its_own_copy_only()
    {
        const string subject = "split into copies";
        string post = await world.OpensslPostAsync(world["alice"].Address, ListWorld.Crypto, subject,
            Smime.Entity("Three copies of one post."), [world.ListCert(ListWorld.Crypto)], "-aes256");

        Swaks s = await world.SendAsync(world["alice"].Address, [ListWorld.Crypto], post);
        Assert.True(s.Accepted, s.ToString());

        // Three messages: the milter's own (2 members) and two copies (2 and 1); Postfix may deliver each in one
        // or more transactions, so wait for every member rather than for a count of files.
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject, transactions: 3);
        await Poll.UntilAsync(
            () => (got = world.ReceivedNow(subject)).SelectMany(m => m.Recipients).Count() >= CryptoMembers.Length,
            $"all {CryptoMembers.Length} members of the split post to be delivered",
            TimeSpan.FromSeconds(60),
            evidence: () => string.Join(", ", got.SelectMany(m => m.Recipients)));

        List<string> rcpts = [.. got.SelectMany(m => m.Recipients).Select(Addr)];
        Assert.Equal(CryptoMembers.Select(n => world[n].Address).Order(), rcpts.Order());
        Assert.DoesNotContain(rcpts, r => r.EndsWith("@" + ListWorld.Domain, StringComparison.OrdinalIgnoreCase));

        var stamps = new List<string>();
        foreach (SinkMessage m in got)
        {
            // Each message carries RecipientInfos for at most PerCopy members, and its own recipients can read it.
            var cms = new EnvelopedCms();
            cms.Decode(Smime.CmsOf(m.Headers + "\n" + m.Body));
            Assert.InRange(cms.RecipientInfos.Count, 1, SplitWorld.PerCopy);
            Assert.True(m.Recipients.Count <= cms.RecipientInfos.Count, $"{m.Recipients.Count} recipients, {cms.RecipientInfos.Count} RecipientInfos");
            foreach (string name in CryptoMembers.Where(n => m.Recipients.Select(Addr).Contains(world[n].Address)).Where(n => n is "alice" or "bob" or "carol"))
            {
                Assert.NotNull(await world.OpensslDecryptAsync(m, world[name]));
            }

            foreach (string name in new[] { "alice", "bob", "carol" }.Where(n => !m.Recipients.Select(Addr).Contains(world[n].Address)))
            {
                // A member of another group holds no RecipientInfo in this copy, unless Postfix split one message
                // into several transactions; the CMS count above rules out a copy carrying the whole list.
                if (cms.RecipientInfos.Count == m.Recipients.Count)
                {
                    Assert.Null(await world.OpensslDecryptAsync(m, world[name]));
                }
            }

            stamps.Add(m.Headers.Split('\n').Single(l => l.StartsWith("X-SecureList:", StringComparison.Ordinal)));
        }

        Assert.Equal(["copy 1 of 3", "copy 2 of 3", "copy 3 of 3"], stamps.Select(h => h[^11..]).Distinct().Order());
        await world.WaitForMilterLogAsync("further copies for 3 members queued");
    }
}
