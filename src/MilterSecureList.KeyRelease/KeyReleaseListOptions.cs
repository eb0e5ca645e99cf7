using MilterSecureList.Directory;

namespace MilterSecureList.KeyRelease;

/// <summary>The per-list options of key release (docs/key-release.md §4.3), read from the directory.</summary>
public static class KeyReleaseListOptions
{
    public static readonly TimeSpan DefaultExpiry = TimeSpan.FromDays(365);

    public static bool IsReleaseList(MailingList list) => list.GetOption(ListOptionKeys.Release) == "on";

    /// <summary>The list's <c>release-expiry</c>, or 365 days.</summary>
    public static TimeSpan Expiry(MailingList list) =>
        ListOptionKeys.TryParseReleaseExpiry(list.GetOption(ListOptionKeys.ReleaseExpiry), out TimeSpan t) ? t : DefaultExpiry;
}
