using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using static MilterSecureList.Filter.Tests.FilterTestKit;

namespace MilterSecureList.Filter.Tests;

/// <summary>The filter parses the CMS of a message once: it inspects it, then re-wraps what it inspected
/// (docs/design.md, "One parse per message"). A second parse anywhere on the path fails these tests.</summary>
public sealed class OneParseTests
{
    private const string List = "crypto@lists.example.org";

    private static ListMessageProcessor Processor(FakeDirectory directory) =>
        new(directory, new PolicyOptions(), new RecordingOwnerNotifier(), NullLogger.Instance);

    private static ListMessage Post(byte[] der) =>
        new("<dave@example.com>", [$"<{List}>"], SmimeHeaders, Base64Body(der), "Q1");

    [Fact]
    public async Task ARekeyedMessageIsParsedOnce()
    {
        FakeDirectory dir = NewDirectory(List, ListMode.Rekey, members: [Member("alice@example.org"), Member("bob@example.org")]);
        var parses = new StrongBox<int>();
        CmsEnvelopeInfo.ParseCounter.Value = parses;

        using FilterDecision d = await Processor(dir).ProcessAsync(Post(Encrypt(List)));

        Assert.Equal(2, d.MembersRekeyed);
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "bob@example.org"));
        Assert.Equal(1, parses.Value);
    }

    [Fact]
    public async Task ADoubleWrappedMessageIsParsedOnce()
    {
        FakeDirectory dir = NewDirectory(List, ListMode.Double, members: [Member("alice@example.org"), Member("bob@example.org")]);
        byte[] sent = DoubleWrap.Encrypt(Entity, List, 1, RandomNumberGenerator.GetBytes(DoubleWrap.ListKeyLength), PublicOnly(List));
        var parses = new StrongBox<int>();
        CmsEnvelopeInfo.ParseCounter.Value = parses;

        using FilterDecision d = await Processor(dir).ProcessAsync(Post(sent));

        Assert.Equal(2, d.MembersRekeyed);
        Assert.Equal(1, parses.Value);
    }

    [Fact]
    public async Task AKeyReleasePostIsParsedOnce()
    {
        var options = new Dictionary<string, string> { ["release"] = "on" };
        FakeDirectory dir = NewDirectory(List, ListMode.Rekey, options: options, members: [Member("alice@example.org")]);
        var depository = new RecordingDepository(CmsRecipient.FromCertificate(PublicOnly("keys@example.org")));
        var parses = new StrongBox<int>();
        CmsEnvelopeInfo.ParseCounter.Value = parses;

        using FilterDecision d = await new ListMessageProcessor(dir, new PolicyOptions(), new RecordingOwnerNotifier(), NullLogger.Instance)
        {
            KeyDepository = depository,
        }.ProcessAsync(Post(Encrypt(List)));

        Assert.NotNull(d.ReleaseMessageId);
        Assert.Equal(d.ReleaseMessageId, Assert.Single(depository.Seals).Entry.MessageIdHex);
        Assert.Equal(1, parses.Value);
    }

    /// <summary>Accepts every deposit and keeps it, as a key server that stored it would.</summary>
    private sealed class RecordingDepository(CmsRecipient releaseCertificate) : IKeyDepository
    {
        public List<KeyReleaseSeal> Seals { get; } = [];

        public string KeyServerUrl => "https://keys.example.org/";

        public CmsRecipient ReleaseCertificate { get; } = releaseCertificate;

        public Task DepositAsync(KeyReleaseSeal seal, CancellationToken cancellationToken)
        {
            Seals.Add(seal);
            return Task.CompletedTask;
        }
    }
}
