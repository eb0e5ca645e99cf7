namespace MilterSecureList.Filter;

/// <summary>One extra copy of a split post: its members and the whole message (header block and body, CRLF).</summary>
public sealed record ListCopy(IReadOnlyList<string> Recipients, Stream Message);

/// <summary>
/// Queues the extra copies of a post split by <see cref="PolicyOptions.MembersPerCopy"/> (docs/design.md,
/// "Lists of 100,000 members"). Returns once every copy is queued; throws if any was not, after which the
/// post is tempfailed.
/// </summary>
public interface ICopySubmitter
{
    /// <summary>Submits each copy as it is produced (each stream is disposed once sent) and returns how many went.</summary>
    Task<int> SubmitAsync(string server, string sender, IAsyncEnumerable<ListCopy> copies, CancellationToken cancellationToken);
}
