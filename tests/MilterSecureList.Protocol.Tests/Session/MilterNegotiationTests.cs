using MilterSecureList.Protocol.Commands;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Tests.Session;

public class MilterNegotiationTests
{
    private const MilterProtocolOptions AllV6 = (MilterProtocolOptions)0x1FFFFF;

    /// <summary>What MTAs offer (docs/protocol.md §5): Postfix 3.7 at each milter_protocol, sendmail, a stingy MTA.</summary>
    public static TheoryData<string, uint, uint, uint> Offers => new()
    {
        { "postfix-v6", 6, 0x1FF, 0x1FFFFF },
        { "postfix-v4", 4, 0x1FF, 0x37F },
        { "postfix-v3", 3, 0x1FF, 0x17F },
        { "postfix-v2", 2, 0x1FF, 0x7F },
        { "sendmail-mds", 6, 0x1FF, 0x301FFFFF },
        { "no-symlist-no-nr", 6, 0x0FF, 0x7F },
        { "future-v7", 7, 0x1FF, 0x1FFFFF },
        { "nothing", 6, 0, 0 },
    };

    public static IEnumerable<MilterHandlerCapabilities> Capabilities =>
    [
        new() { RequiredActions = MilterActions.ChangeBody | MilterActions.AddRecipient | MilterActions.DeleteRecipient },
        new() { Events = (MilterEvents)0xFF, RequiredActions = MilterActions.All, HeaderLeadingSpace = true },
        new() { NeedsBody = false, NeedsHeaders = false },
        new() { Events = MilterEvents.Recipient, OptionalActions = MilterActions.AddRecipientWithArgs, MacroRequests = new Dictionary<MacroStage, string> { [MacroStage.Connect] = "{client_addr}", [MacroStage.EndOfMessage] = "{rcpt_addr} i" } },
    ];

    [Theory]
    [MemberData(nameof(Offers))]
    public void NeverClaimsWhatTheMtaDidNotOffer(string name, uint version, uint actions, uint protocol)
    {
        var offer = new OptionNegotiationCommand(version, (MilterActions)actions, (MilterProtocolOptions)protocol);
        foreach (MilterHandlerCapabilities caps in Capabilities)
        {
            MilterNegotiationResult r = MilterNegotiation.Negotiate(offer, caps);
            Assert.True(r.Version == Math.Min(6, version), name);
            Assert.Equal(MilterActions.None, r.Actions & ~(MilterActions)actions);
            Assert.Equal(MilterProtocolOptions.None, r.Protocol & ~(MilterProtocolOptions)protocol);
            Assert.Equal(caps.RequiredActions & ~(MilterActions)actions, r.MissingActions);
            Assert.Equal(r.MacroRequests is not null, (actions & 0x100) != 0);

            // A reply is expected for every event the handler decides on.
            if ((caps.Events & MilterEvents.Recipient) != 0)
            {
                Assert.True(r.ExpectsReply(MilterCommandCode.Recipient));
            }

            Assert.True(r.ExpectsReply(MilterCommandCode.EndOfMessage));
            Assert.False(r.ExpectsReply(MilterCommandCode.Abort));
            Assert.False(r.ExpectsReply(MilterCommandCode.Macro));
            Assert.False(r.ExpectsReply(MilterCommandCode.Quit));
        }
    }

    [Fact]
    public void AsksForNoReplyOnEverythingTheHandlerOnlyRecords()
    {
        MilterNegotiationResult r = MilterNegotiation.Negotiate(
            new OptionNegotiationCommand(6, MilterActions.All, AllV6),
            new MilterHandlerCapabilities { RequiredActions = MilterActions.ChangeBody });
        MilterProtocolOptions expected = MilterProtocolOptions.NoConnect | MilterProtocolOptions.NoHelo | MilterProtocolOptions.NoData
            | MilterProtocolOptions.NoEndOfHeaders | MilterProtocolOptions.NoUnknown | MilterProtocolOptions.NoReplyMail
            | MilterProtocolOptions.NoReplyRecipient | MilterProtocolOptions.NoReplyHeader | MilterProtocolOptions.NoReplyBody;
        Assert.Equal(expected, r.Protocol);
        Assert.Equal(MilterActions.ChangeBody | MilterActions.SetSymbolList, r.Actions);
        Assert.Equal("i", r.MacroRequests![MacroStage.EndOfMessage]);
    }

    [Fact]
    public void SwitchesOffHeadersAndBodyWhenNotNeeded()
    {
        MilterNegotiationResult r = MilterNegotiation.Negotiate(new OptionNegotiationCommand(6, MilterActions.All, AllV6), new MilterHandlerCapabilities { NeedsBody = false, NeedsHeaders = false });
        Assert.True((r.Protocol & MilterProtocolOptions.NoBody) != 0);
        Assert.True((r.Protocol & MilterProtocolOptions.NoHeaders) != 0);
        Assert.True((r.Protocol & MilterProtocolOptions.NoReplyBody) == 0);
    }

    [Fact]
    public void WithoutNoReplyOfferedEveryReceivedEventExpectsAReply()
    {
        MilterNegotiationResult r = MilterNegotiation.Negotiate(new OptionNegotiationCommand(2, MilterActions.All, (MilterProtocolOptions)0x7F), new MilterHandlerCapabilities());
        Assert.Equal(2u, r.Version);
        Assert.True(r.ExpectsReply(MilterCommandCode.Mail));
        Assert.True(r.ExpectsReply(MilterCommandCode.Recipient));
        Assert.True(r.ExpectsReply(MilterCommandCode.Body));
    }

    [Fact]
    public void MergesRequestedMacrosWithTheQueueId()
    {
        MilterNegotiationResult r = MilterNegotiation.Negotiate(
            new OptionNegotiationCommand(6, MilterActions.All, AllV6),
            new MilterHandlerCapabilities { MacroRequests = new Dictionary<MacroStage, string> { [MacroStage.EndOfMessage] = "{auth_authen}", [MacroStage.Connect] = "{client_addr}" } });
        Assert.Equal("{auth_authen} i", r.MacroRequests![MacroStage.EndOfMessage]);
        Assert.Equal("{client_addr}", r.MacroRequests[MacroStage.Connect]);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1u)]
    public void RefusesVersionsBelowTwo(uint version) =>
        Assert.Equal(MilterViolation.UnsupportedVersion, Assert.Throws<MilterProtocolException>(() => MilterNegotiation.Negotiate(new OptionNegotiationCommand(version, MilterActions.All, AllV6), new MilterHandlerCapabilities())).Reason);
}
