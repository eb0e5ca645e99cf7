namespace MilterSecureList.Filter;

/// <summary>
/// What the list filter's milter handler reports per message. The host decides what to make of it (the daemon
/// counts it for its [Metrics] endpoint); the filter formats nothing. Called on the message path: implementations
/// must not block.
/// </summary>
public interface IFilterMetrics
{
    /// <summary>A message to at least one list reached end of message.</summary>
    void MessageSeen();

    /// <summary>A verdict given before end of message: <c>pass</c> (no list), <c>reject</c> or <c>tempfail</c> at RCPT.</summary>
    void Verdict(string kind);

    /// <summary>The decision at end of message and how long it took.</summary>
    void Completed(FilterDecision decision, TimeSpan elapsed);
}
