namespace MilterSecureList.Daemon.Options;

/// <summary>[Listener]: where and how the milter socket listens.</summary>
public sealed class ListenerOptions : OptionsSection
{
    public override string SectionName => "Listener";

    /// <summary>inet:HOST:PORT or unix:/path (Postfix's smtpd_milters syntax).</summary>
    public ListenerEndpoint Socket { get; private set; } = ListenerEndpoint.Parse("inet:127.0.0.1:8891");

    /// <summary>Mode of the unix socket file, so the postfix user can connect.</summary>
    public UnixFileMode SocketMode { get; private set; } = (UnixFileMode)0x1B0; // 0660

    /// <summary>Group of the unix socket file (empty: the daemon's group).</summary>
    public string SocketGroup { get; private set; } = string.Empty;

    /// <summary>Concurrent milter connections (= concurrent smtpd sessions using us).</summary>
    public int MaxConnections { get; private set; } = 1000;

    /// <summary>How long SIGTERM waits for open messages to finish before connections are cut.</summary>
    public TimeSpan DrainTimeout { get; private set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// kestrel (default) | pipelines: the socket server that hosts the milter. pipelines
    /// (Pipelines.Sockets.Unofficial) exists to be measured against Kestrel by bench/run.sh protocol.
    /// </summary>
    public string Transport { get; private set; } = "kestrel";

    /// <summary>Networks an inet listener accepts connections from (default loopback); ignored for unix sockets.</summary>
    public PeerAllowList AllowFrom { get; private set; } = PeerAllowList.Loopback;

    public override void Load(IniSection section)
    {
        string socket = section.GetNonEmptyString("Socket", "inet:127.0.0.1:8891");
        if (!ListenerEndpoint.TryParse(socket, out ListenerEndpoint? endpoint, out string? problem))
        {
            throw section.Error("Socket", problem);
        }

        Socket = endpoint;
        SocketMode = section.GetOctalMode("SocketMode", SocketMode);
        SocketGroup = section.GetString("SocketGroup", string.Empty);
        if (SocketGroup.Length > 0 && !UnixSocketPermissions.GroupExists(SocketGroup))
        {
            throw section.Error("SocketGroup", $"group '{SocketGroup}' does not exist");
        }

        MaxConnections = section.GetInt("MaxConnections", MaxConnections, 1, 1_000_000);
        DrainTimeout = section.GetDuration("DrainTimeout", DrainTimeout, TimeSpan.Zero, TimeSpan.FromHours(1));
        Transport = section.GetChoice("Transport", Transport, "kestrel", "pipelines");
        string allow = section.GetString("AllowFrom", PeerAllowList.Loopback.ToString());
        if (!PeerAllowList.TryParse(allow, out PeerAllowList? list, out string? allowProblem))
        {
            throw section.Error("AllowFrom", allowProblem);
        }

        AllowFrom = list;
    }
}

/// <summary>Start-up failures of the listeners, in the configuration's words instead of Kestrel's.</summary>
public static class ListenFailure
{
    /// <summary>
    /// Kestrel reports a busy port as "Failed to bind to address http://127.0.0.1:8891: address already in use."
    /// Operators configured a milter socket, not an HTTP URL: name the key, the address as written in
    /// milter.ini, and the cause, on one line.
    /// </summary>
    public static string Describe(Exception e, DaemonConfiguration configuration)
    {
        Exception inner = e;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        string cause = inner.Message.ReplaceLineEndings(" ").Trim().TrimEnd('.');
        if (cause.Length > 0)
        {
            cause = char.ToLowerInvariant(cause[0]) + cause[1..];
        }

        if (!e.Message.StartsWith("Failed to bind to address", StringComparison.Ordinal))
        {
            return e.Message.ReplaceLineEndings(" ");
        }

        if (configuration.Get<MetricsSection>().Listen is { } metrics &&
            e.Message.Contains(":" + metrics.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))
        {
            return $"cannot listen on [Metrics] Listen = {metrics}: {cause}";
        }

        return $"cannot listen on [Listener] Socket = {configuration.Get<ListenerOptions>().Socket}: {cause}";
    }
}
