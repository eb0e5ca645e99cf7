using Microsoft.Extensions.Logging;

namespace MilterSecureList.Admin.Commands;

/// <summary>
/// Keeps the lines the list filter logs, worded as the daemon writes them, so that <c>securelist check</c> can
/// show why a message was tempfailed (and every line with <c>-v</c>).
/// </summary>
internal sealed class CollectingLogger : ILogger
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines => _lines;

    /// <summary>The message of the last warning or error, e.g. the key file that could not be read and why.</summary>
    public string? LastError { get; private set; }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        string text = AdminContext.Printable(formatter(state, exception));
        _lines.Add($"{logLevel.ToString().ToLowerInvariant()}: {text}");
        if (logLevel >= LogLevel.Warning)
        {
            LastError = text;
        }
    }
}
