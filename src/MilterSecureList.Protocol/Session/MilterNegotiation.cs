using MilterSecureList.Protocol.Commands;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>The outcome of option negotiation: what we answered and what the handler is missing.</summary>
public sealed record MilterNegotiationResult(
    uint Version,
    MilterActions Actions,
    MilterProtocolOptions Protocol,
    MilterActions MissingActions,
    IReadOnlyDictionary<MacroStage, string>? MacroRequests)
{
    /// <summary>Whether the MTA expects a reply to <paramref name="code"/> under this negotiation.</summary>
    public bool ExpectsReply(MilterCommandCode code) => code switch
    {
        MilterCommandCode.Connect => (Protocol & MilterProtocolOptions.NoReplyConnect) == 0,
        MilterCommandCode.Helo => (Protocol & MilterProtocolOptions.NoReplyHelo) == 0,
        MilterCommandCode.Mail => (Protocol & MilterProtocolOptions.NoReplyMail) == 0,
        MilterCommandCode.Recipient => (Protocol & MilterProtocolOptions.NoReplyRecipient) == 0,
        MilterCommandCode.Data => (Protocol & MilterProtocolOptions.NoReplyData) == 0,
        MilterCommandCode.Header => (Protocol & MilterProtocolOptions.NoReplyHeader) == 0,
        MilterCommandCode.EndOfHeaders => (Protocol & MilterProtocolOptions.NoReplyEndOfHeaders) == 0,
        MilterCommandCode.Body => (Protocol & MilterProtocolOptions.NoReplyBody) == 0,
        MilterCommandCode.Unknown => (Protocol & MilterProtocolOptions.NoReplyUnknown) == 0,
        MilterCommandCode.EndOfMessage => true,
        _ => false, // MACRO, ABORT, QUIT, QUIT_NC are never answered (docs/protocol.md §1 rule 2)
    };
}

/// <summary>
/// Option negotiation (docs/protocol.md §5): version min(6, MTA), never an action or
/// protocol bit the MTA did not offer, NO* for events nobody needs, NR_* for events we only record, and the
/// macro lists in the OPTNEG reply (always <c>i</c> at end-of-message, for logging).
/// </summary>
public static class MilterNegotiation
{
    public static MilterNegotiationResult Negotiate(OptionNegotiationCommand offer, MilterHandlerCapabilities capabilities)
    {
        if (offer.Version < 2)
        {
            MilterProtocolException.Throw(MilterViolation.UnsupportedVersion, $"MTA protocol version {offer.Version} is below 2");
        }

        uint version = Math.Min(MilterLimits.ProtocolVersion, offer.Version);
        MilterActions wanted = capabilities.RequiredActions | capabilities.OptionalActions;
        MilterActions actions = wanted & offer.Actions & ~MilterActions.SetSymbolList;
        MilterActions missing = capabilities.RequiredActions & ~offer.Actions;

        var macros = new Dictionary<MacroStage, string>();
        if (capabilities.MacroRequests is not null)
        {
            foreach (KeyValuePair<MacroStage, string> kv in capabilities.MacroRequests)
            {
                macros[kv.Key] = kv.Value;
            }
        }

        macros[MacroStage.EndOfMessage] = MergeNames(macros.GetValueOrDefault(MacroStage.EndOfMessage), "i");

        // Macro lists travel in the OPTNEG reply only when the MTA offers SETSYMLIST (libmilter does the same).
        IReadOnlyDictionary<MacroStage, string>? sentMacros = null;
        if ((offer.Actions & MilterActions.SetSymbolList) != 0)
        {
            actions |= MilterActions.SetSymbolList;
            sentMacros = macros;
        }

        MilterEvents ev = capabilities.Events;
        MilterProtocolOptions p = MilterProtocolOptions.None;
        p |= Has(ev, MilterEvents.Connect) ? 0 : MilterProtocolOptions.NoConnect;
        p |= Has(ev, MilterEvents.Helo) ? 0 : MilterProtocolOptions.NoHelo;

        // MAIL and RCPT build the envelope of the end-of-message context: always received.
        p |= Has(ev, MilterEvents.MailFrom) ? 0 : MilterProtocolOptions.NoReplyMail;
        p |= Has(ev, MilterEvents.Recipient) ? 0 : MilterProtocolOptions.NoReplyRecipient;
        p |= Has(ev, MilterEvents.Data) ? 0 : MilterProtocolOptions.NoData;
        if (!Has(ev, MilterEvents.Header))
        {
            p |= capabilities.NeedsHeaders ? MilterProtocolOptions.NoReplyHeader : MilterProtocolOptions.NoHeaders;
        }

        p |= Has(ev, MilterEvents.EndOfHeaders) ? 0 : MilterProtocolOptions.NoEndOfHeaders;

        // Body chunks only feed the spool; the handler decides at end-of-message.
        p |= capabilities.NeedsBody ? MilterProtocolOptions.NoReplyBody : MilterProtocolOptions.NoBody;
        p |= Has(ev, MilterEvents.Unknown) ? 0 : MilterProtocolOptions.NoUnknown;
        if (capabilities.HeaderLeadingSpace)
        {
            p |= MilterProtocolOptions.HeaderLeadingSpace;
        }

        return new MilterNegotiationResult(version, actions, p & offer.Protocol, missing, sentMacros);
    }

    private static bool Has(MilterEvents events, MilterEvents e) => (events & e) != 0;

    private static string MergeNames(string? list, string name)
    {
        if (string.IsNullOrWhiteSpace(list))
        {
            return name;
        }

        return list.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(name, StringComparer.Ordinal) ? list : list + " " + name;
    }
}
