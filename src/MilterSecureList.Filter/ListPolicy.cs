using MilterSecureList.Directory;

namespace MilterSecureList.Filter;

/// <summary>
/// The effective policy for one list: the list's own options from the directory over the <c>[Policy]</c>
/// defaults. Option names are the ones <c>securelist list set LIST --option NAME=VALUE</c> writes.
/// </summary>
public sealed class ListPolicy
{
    private const string PlaintextOption = ListOptionKeys.Plaintext;
    private const string MissingCertOption = ListOptionKeys.MissingCert;
    private const string NonMemberOption = ListOptionKeys.NonMember;
    private const string SelfCopyOption = ListOptionKeys.SelfCopy;
    private const string BounceAddressOption = ListOptionKeys.BounceAddress;
    private const string CertUrlOption = ListOptionKeys.CertUrl;
    private const string ListHeadersOption = ListOptionKeys.ListHeaders;
    private const string EcSharedKeyOption = ListOptionKeys.EcSharedKey;

    public required PlaintextAction Plaintext { get; init; }

    public required MissingCertificateAction MissingCertificate { get; init; }

    /// <summary>Null when anyone may post (posting policy <c>open</c>).</summary>
    public required NonMemberAction? NonMember { get; init; }

    public required bool SenderCopy { get; init; }

    public required bool ListHeaders { get; init; }

    public string? BounceAddress { get; init; }

    /// <summary>EC members share one ephemeral key and KeyAgreeRecipientInfo per curve (list option
    /// <c>ec-shared-key</c>, default yes; no: one per member).</summary>
    public bool ShareKeyAgreement { get; init; } = true;

    public required string CertificateWhere { get; init; }

    public static ListPolicy For(MailingList list, PolicyOptions defaults)
    {
        IReadOnlyDictionary<string, string> o = list.Options;
        string? url = Get(o, CertUrlOption) ?? (defaults.CertificateUrl.Length > 0 ? defaults.CertificateUrl : null);
        string where = url is not null
            ? $"at {url}"
            : string.IsNullOrEmpty(list.Owner) ? $"from the owner of <{list.Address}>" : $"from the list owner <{list.Owner}>";

        return new ListPolicy
        {
            Plaintext = Get(o, PlaintextOption) switch
            {
                null => defaults.Plaintext,
                "pass" or "accept" => PlaintextAction.Pass,
                _ => PlaintextAction.Reject,
            },
            MissingCertificate = Get(o, MissingCertOption) switch
            {
                null => defaults.MissingCertificate,
                "tempfail" => MissingCertificateAction.Tempfail,
                _ => MissingCertificateAction.Skip,
            },
            NonMember = !IsMembersOnly(list)
                ? null
                : Get(o, NonMemberOption) switch
                {
                    null => defaults.NonMember,
                    "accept" => NonMemberAction.Accept,
                    _ => NonMemberAction.Reject,
                },
            SenderCopy = Get(o, SelfCopyOption) is string s ? IsYes(s) : defaults.SenderCopy,
            ListHeaders = Get(o, ListHeadersOption) is string h ? IsYes(h) : defaults.ListHeaders,
            BounceAddress = Get(o, BounceAddressOption),
            ShareKeyAgreement = Get(o, EcSharedKeyOption) is not string k || IsYes(k),
            CertificateWhere = where,
        };
    }

    private static bool IsMembersOnly(MailingList list) => list.PostingPolicy == PostingPolicy.MembersOnly;

    private static string? Get(IReadOnlyDictionary<string, string> options, string name) =>
        options.TryGetValue(name, out string? v) && !string.IsNullOrWhiteSpace(v) ? v.Trim().ToLowerInvariant() : null;

    private static bool IsYes(string v) => v is "yes" or "true" or "on" or "1";
}
