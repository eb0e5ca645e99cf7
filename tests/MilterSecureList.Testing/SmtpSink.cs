namespace MilterSecureList.Testing;

/// <summary>
/// Postfix's smtp-sink on a free 127.0.0.1 port, dumping every transaction (envelope included) into a directory:
/// the real SMTP peer behind a throwaway Postfix and of the owner-notice client. Killed on dispose.
/// </summary>
public sealed class SmtpSink : IAsyncDisposable
{
    private readonly BackgroundProcess _process;

    private SmtpSink(BackgroundProcess process, string directory, int port)
    {
        _process = process;
        Directory = directory;
        Port = port;
    }

    /// <summary>Where the per-transaction dump files go.</summary>
    public string Directory { get; }

    public int Port { get; }

    /// <summary>
    /// Starts smtp-sink (as user postfix: it refuses to keep root) dumping into <paramref name="directory"/>, which it
    /// makes writable for that user, and waits until the port accepts connections.
    /// </summary>
    public static async Task<SmtpSink> StartAsync(string directory, int backlog = 128)
    {
        System.IO.Directory.CreateDirectory(directory);
        (await ExternalTool.RunAsync("chown", ["postfix", directory]).ConfigureAwait(false)).EnsureSuccess();
        int port = ExternalTool.FreeTcpPort();
        BackgroundProcess process = ExternalTool.Start(
            "smtp-sink", ["-u", "postfix", "-d", Path.Combine(directory, "%Y%m%d%H%M%S."), $"127.0.0.1:{port}", backlog.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var sink = new SmtpSink(process, directory, port);
        try
        {
            await Poll.UntilAsync(async () => process.HasExited || await Loopback.IsListeningAsync(port).ConfigureAwait(false), "smtp-sink to listen on port " + port).ConfigureAwait(false);
            return process.HasExited ? throw new InvalidOperationException($"{process.CommandLine} exited {process.ExitCode}: {process.Output}") : sink;
        }
        catch
        {
            await sink.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The transactions dumped so far. smtp-sink creates a dump at MAIL and closes it when it reads the final dot,
    /// before it answers 250; so a transaction its client has seen accepted is complete here.
    /// </summary>
    public IReadOnlyList<SinkMessage> ReadMessages() => System.IO.Directory.Exists(Directory)
        ? [.. System.IO.Directory.GetFiles(Directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(SinkMessage.Parse)]
        : [];

    public ValueTask DisposeAsync() => _process.DisposeAsync();
}

/// <summary>Loopback TCP probes for servers the tests start.</summary>
public static class Loopback
{
    /// <summary>True when something accepts a TCP connection on 127.0.0.1:<paramref name="port"/>.</summary>
    public static async Task<bool> IsListeningAsync(int port)
    {
        try
        {
            using var client = new System.Net.Sockets.TcpClient();
            await client.ConnectAsync("127.0.0.1", port).ConfigureAwait(false);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
