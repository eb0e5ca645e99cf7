using MilterSecureList.Directory;

namespace MilterSecureList.KeyRelease;

/// <summary>When the key server forgets a post's key material (list option <c>release-delete</c>, docs/key-release.md §4.3).</summary>
public enum ReleaseDeletePolicy
{
    /// <summary><c>at-expiry</c> (the default): when the post's notAfter has passed.</summary>
    AtExpiry,

    /// <summary><c>after-all</c>: once every member at deposit time has fetched it, at the latest at expiry.</summary>
    AfterAll,

    /// <summary><c>never</c>: kept (still refused after expiry).</summary>
    Never,
}

/// <summary>The per-list options of key release (docs/key-release.md §4.3), read from the directory.</summary>
public static class KeyReleaseListOptions
{
    public static readonly TimeSpan DefaultExpiry = TimeSpan.FromDays(365);

    public static bool IsReleaseList(MailingList list) => list.GetOption(ListOptionKeys.Release) == "on";

    /// <summary>The list's <c>release-expiry</c>, or 365 days.</summary>
    public static TimeSpan Expiry(MailingList list) =>
        ListOptionKeys.TryParseReleaseExpiry(list.GetOption(ListOptionKeys.ReleaseExpiry), out TimeSpan t) ? t : DefaultExpiry;

    /// <summary>The list's <c>release-delete</c>, or <see cref="ReleaseDeletePolicy.AtExpiry"/>.</summary>
    public static ReleaseDeletePolicy Delete(MailingList list) => ParseDelete(list.GetOption(ListOptionKeys.ReleaseDelete));

    /// <summary>The stored or configured spelling; anything else is the default.</summary>
    public static ReleaseDeletePolicy ParseDelete(string? text) => text switch
    {
        "after-all" => ReleaseDeletePolicy.AfterAll,
        "never" => ReleaseDeletePolicy.Never,
        _ => ReleaseDeletePolicy.AtExpiry,
    };

    public static string Name(ReleaseDeletePolicy policy) => policy switch
    {
        ReleaseDeletePolicy.AfterAll => "after-all",
        ReleaseDeletePolicy.Never => "never",
        _ => "at-expiry",
    };
}
