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
    public const string Release = "release";
    public const string ReleaseExpiry = "release-expiry";
    public const string ReleaseDelete = "release-delete";
    public const string Receipts = "receipts";

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
        // Key release (docs/key-release.md): members fetch each post's key from the key server.
        [Release] = ["on", "off"],
        [ReleaseExpiry] = [], // a duration in days or hours: 30d, 12h (checked below)
        [ReleaseDelete] = ["after-all", "at-expiry", "never"],
        [Receipts] = ["off", "sender", "owner"],
    };

    public static IEnumerable<string> Known => s_allowed.Keys;

    /// <summary>Null when KEY=VALUE is acceptable, else a one-line problem.</summary>
    public static string? Check(string key, string value)
    {
        if (!s_allowed.TryGetValue(key, out string[]? values))
        {
            return $"unknown list option '{key}' (known: {string.Join(", ", s_allowed.Keys)})";
        }

        if (key == ReleaseExpiry)
        {
            return TryParseReleaseExpiry(value, out _) ? null : $"option {key}: '{value}' is not a duration such as 30d or 12h";
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

    /// <summary>Parses <c>release-expiry</c>: a positive whole number of days (<c>30d</c>) or hours (<c>12h</c>), at most 100 years.</summary>
    public static bool TryParseReleaseExpiry(string? text, out TimeSpan expiry)
    {
        expiry = default;
        if (text is not { Length: >= 2 and <= 8 } || !int.TryParse(text.AsSpan(0, text.Length - 1), System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out int n) || n is <= 0 or > 36_500 * 24)
        {
            return false;
        }

        expiry = text[^1] switch
        {
            'd' when n <= 36_500 => TimeSpan.FromDays(n),
            'h' => TimeSpan.FromHours(n),
            _ => TimeSpan.Zero,
        };
        return expiry > TimeSpan.Zero;
    }
}
