using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Daemon.Options;

/// <summary>[Milter]: which handler runs and the per-connection limits of the protocol layer.</summary>
public sealed class MilterOptions : OptionsSection
{
    public override string SectionName => "Milter";

    /// <summary>lists | gateway | passthrough | echo, or the chain "gateway,lists" from [Milter] Handlers (see Handlers/HandlerRegistry.cs).</summary>
    public string Handler { get; private set; } = "lists";

    /// <summary>Recipients the echo handler adds per message.</summary>
    public int EchoRecipients { get; private set; } = 10;

    /// <summary>Body bytes kept in memory per message before spilling to a temp file.</summary>
    public long SpoolThreshold { get; private set; } = 2 * 1024 * 1024;

    /// <summary>Body bytes kept in memory by all connections together; beyond it bodies spill to temp files.</summary>
    public long SpoolMemory { get; private set; } = 16 * 1024 * 1024;

    /// <summary>Native memory kept in imported member public-key objects, process-wide (docs/design.md, "Lists of
    /// 100,000 members"): a member whose key object is not kept is imported again for each message.</summary>
    public long KeyCacheMemory { get; private set; } = 16 * 1024 * 1024;

    /// <summary>Largest body accepted; larger messages are rejected 552 5.3.4.</summary>
    public long MaxMessageSize { get; private set; } = MessageSizeLimit.Default;

    /// <summary>Largest milter packet accepted; a larger length prefix closes the connection.</summary>
    public int MaxPacketSize { get; private set; } = 256 * 1024;

    /// <summary>Directory for spilled bodies (empty: the system temp directory).</summary>
    public string TempDirectory { get; private set; } = string.Empty;

    /// <summary>Header bytes kept per message; past it the message is rejected 552 5.3.4.</summary>
    public long MaxHeaderBytes { get; private set; } = HeaderSizeLimit.Default;

    /// <summary>Recipients kept per message; past it recipients get 452 4.5.3.</summary>
    public int MaxRecipients { get; private set; } = 10_000;

    /// <summary>RCPT bytes kept per message; past it recipients get 452 4.5.3.</summary>
    public long MaxRecipientBytes { get; private set; } = 2 * 1024 * 1024;

    /// <summary>Macro bytes kept per connection; past it messages are tempfailed 451 4.3.0.</summary>
    public long MaxMacroBytes { get; private set; } = 64 * 1024;

    /// <summary>Time for OPTNEG after connect, for a begun frame to complete, and for the MTA to read a reply.</summary>
    public TimeSpan FrameTimeout { get; private set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time a connection may stay silent between commands.</summary>
    public TimeSpan IdleTimeout { get; private set; } = TimeSpan.FromHours(1);

    public override void Load(IniSection section)
    {
        Handler = section.GetChoice("Handler", Handler, Handlers.HandlerRegistry.Names);
        if (section.GetString("Handlers", string.Empty) is { Length: > 0 } chain)
        {
            Handler = Handlers.HandlerRegistry.ParseChain(chain) ?? throw section.Error("Handlers", $"'{chain}' is not one of {string.Join(", ", Handlers.HandlerRegistry.Chains)}");
        }

        EchoRecipients = section.GetInt("EchoRecipients", EchoRecipients, 0, 10_000);
        SpoolThreshold = section.GetSize("SpoolThreshold", SpoolThreshold, 0, 1L << 30);
        SpoolMemory = section.GetSize("SpoolMemory", SpoolMemory, 0, 64L << 30);
        KeyCacheMemory = section.GetSize("KeyCacheMemory", KeyCacheMemory, 0, 64L << 30);
        MaxMessageSize = MessageSizeLimit.Read(section);
        MaxPacketSize = (int)section.GetSize("MaxPacketSize", MaxPacketSize, MilterLimits.MinMaxPayload, 64L * 1024 * 1024);
        MaxHeaderBytes = HeaderSizeLimit.Read(section);
        MaxRecipients = section.GetInt("MaxRecipients", MaxRecipients, 1, 1_000_000);
        MaxRecipientBytes = section.GetSize("MaxRecipientBytes", MaxRecipientBytes, 64 * 1024, 1L << 30);
        MaxMacroBytes = section.GetSize("MaxMacroBytes", MaxMacroBytes, 4 * 1024, 64L * 1024 * 1024);
        FrameTimeout = section.GetDuration("FrameTimeout", FrameTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10));
        IdleTimeout = section.GetDuration("IdleTimeout", IdleTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));
        TempDirectory = section.GetString("TempDirectory", string.Empty);
        if (TempDirectory.Length > 0 && !System.IO.Directory.Exists(TempDirectory))
        {
            throw section.Error("TempDirectory", $"directory '{TempDirectory}' does not exist");
        }
    }
}
