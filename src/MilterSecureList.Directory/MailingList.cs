using System.Collections.ObjectModel;

namespace MilterSecureList.Directory;

/// <summary>How the list server handles posts (re-key, or double-wrap as in docs/double-wrap.md §1).</summary>
public enum ListMode
{
    /// <summary>The server unwraps the CEK with the list key and re-wraps it per member.</summary>
    Rekey,
    /// <summary>Double-wrap: the server re-wraps an inner blob it cannot open.</summary>
    Double,
}

/// <summary>Who may post.</summary>
public enum PostingPolicy
{
    Open,
    MembersOnly,
}

/// <summary>A mailing list as stored in the directory.</summary>
/// <param name="Address">The list address as the operator typed it; compare case-insensitively.</param>
/// <param name="Options">Per-list policy overrides read by the filter (see <see cref="ListOptionKeys"/>).</param>
public sealed record MailingList(
    string Address,
    ListMode Mode,
    string? Owner,
    PostingPolicy PostingPolicy,
    IReadOnlyDictionary<string, string> Options)
{
    public static readonly IReadOnlyDictionary<string, string> NoOptions =
        new ReadOnlyDictionary<string, string>(new Dictionary<string, string>());

    /// <summary>The option's value, or null when the list does not override the default.</summary>
    public string? GetOption(string key) => Options.TryGetValue(key, out string? value) ? value : null;

    public static string FormatMode(ListMode mode) => mode == ListMode.Double ? "double" : "rekey";

    public static string FormatPolicy(PostingPolicy policy) => policy == PostingPolicy.MembersOnly ? "members-only" : "open";

    public static bool TryParseMode(string? text, out ListMode mode)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "rekey":
                mode = ListMode.Rekey;
                return true;
            case "double":
                mode = ListMode.Double;
                return true;
            default:
                mode = default;
                return false;
        }
    }

    public static bool TryParsePolicy(string? text, out PostingPolicy policy)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "open":
                policy = PostingPolicy.Open;
                return true;
            case "members-only":
                policy = PostingPolicy.MembersOnly;
                return true;
            default:
                policy = default;
                return false;
        }
    }
}

/// <summary>
/// The per-list option keys the filter reads, with the values each accepts. Unknown keys are
/// refused at <c>list set</c> so that a typo does not silently leave the default in force.
/// </summary>
public static class ListOptionKeys
{
    public const string Plaintext = "plaintext";
    public const string MissingCert = "missing-cert";
    public const string NonMember = "non-member";
    public const string SelfCopy = "self-copy";
    public const string BounceAddress = "bounce-address";
    public const string RotateOnRemove = "rotate-on-remove";
    public const string CertUrl = "cert-url";
    public const string ListHeaders = "list-headers";
    public const string EcSharedKey = "ec-shared-key";

    private static readonly Dictionary<string, string[]?> s_allowed = new(StringComparer.Ordinal)
    {
        [Plaintext] = ["reject", "pass"],
        [MissingCert] = ["skip", "tempfail"],
        [NonMember] = ["reject", "accept"],
        [SelfCopy] = ["yes", "no"],
        [BounceAddress] = null, // a mail address
        [RotateOnRemove] = ["yes", "no"],
        [CertUrl] = [], // any text: where senders get the list certificate (named in the plaintext reject)
        [ListHeaders] = ["yes", "no"],
        [EcSharedKey] = ["yes", "no"], // EC members share one ephemeral key per curve and message (default yes)
    };

    public static IEnumerable<string> Known => s_allowed.Keys;

    /// <summary>Null when KEY=VALUE is acceptable, else a one-line problem.</summary>
    public static string? Check(string key, string value)
    {
        if (!s_allowed.TryGetValue(key, out string[]? values))
        {
            return $"unknown list option '{key}' (known: {string.Join(", ", s_allowed.Keys)})";
        }

        if (values is { Length: 0 })
        {
            return value.Length is > 0 and <= 200 && !value.Any(char.IsControl) ? null : $"option {key}: must be 1-200 printable characters";
        }

        if (values is null)
        {
            return EmailAddress.IsValid(value) ? null : $"option {key}: '{value}' is not a valid mail address";
        }

        return Array.IndexOf(values, value) >= 0 ? null : $"option {key}: '{value}' is not one of {string.Join("|", values)}";
    }
}
