using MilterSecureList.Directory;

namespace MilterSecureList.Filter;

/// <summary>
/// Tells a list owner that members were left out of a post (policy <c>MissingCertificate = skip</c>). The filter
/// only raises the event; how an owner is told is the host's business (the daemon mails, <c>securelist check</c>
/// prints).
/// </summary>
public interface IOwnerNotifier
{
    void MemberSkipped(MailingList list, string member, string problem);
}

/// <summary>For <c>securelist check</c>/<c>filter</c> and tests: remembers, sends nothing.</summary>
public sealed class RecordingOwnerNotifier : IOwnerNotifier
{
    public List<(string List, string Member, string Problem)> Notices { get; } = [];

    public void MemberSkipped(MailingList list, string member, string problem)
    {
        lock (Notices)
        {
            Notices.Add((list.Address, member, problem));
        }
    }
}
