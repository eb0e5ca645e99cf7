using MilterSecureList.Directory;

namespace MilterSecureList.KeyRelease;

/// <summary>One receipt to mail (docs/key-release.md §7): the first release of post <paramref name="MessageId"/> to
/// <paramref name="Member"/>, going to <paramref name="Recipient"/> (the post's sender or the list owner).</summary>
public sealed record ReleaseReceipt(string MessageId, string List, string Member, DateTimeOffset Time, string Recipient)
{
    /// <summary>Who gets a receipt for a post of <paramref name="list"/> by <paramref name="sender"/>, per the list's
    /// <c>receipts</c> option; null when off (the default) or when there is nobody to send it to.</summary>
    public static string? RecipientFor(MailingList list, string sender) => list.GetOption(ListOptionKeys.Receipts) switch
    {
        "sender" when !string.IsNullOrWhiteSpace(sender) => sender,
        "owner" when !string.IsNullOrWhiteSpace(list.Owner) => list.Owner,
        _ => null,
    };
}

/// <summary>Takes receipts off the release path: an implementation queues and mails them; it never blocks or throws.</summary>
public interface IReleaseReceipts
{
    void Enqueue(ReleaseReceipt receipt);
}
