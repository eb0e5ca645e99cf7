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

    /// <summary>Largest body accepted; larger messages are rejected 552 5.3.4.</summary>
    public long MaxMessageSize { get; private set; } = 50L * 1024 * 1024;

    /// <summary>Largest milter packet accepted; a larger length prefix closes the connection.</summary>
    public int MaxPacketSize { get; private set; } = 256 * 1024;

    /// <summary>Directory for spilled bodies (empty: the system temp directory).</summary>
    public string TempDirectory { get; private set; } = string.Empty;

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
        MaxMessageSize = section.GetSize("MaxMessageSize", MaxMessageSize, 1024, 4L << 30);
        MaxPacketSize = (int)section.GetSize("MaxPacketSize", MaxPacketSize, MilterLimits.MinMaxPayload, 64L * 1024 * 1024);
        TempDirectory = section.GetString("TempDirectory", string.Empty);
        if (TempDirectory.Length > 0 && !System.IO.Directory.Exists(TempDirectory))
        {
            throw section.Error("TempDirectory", $"directory '{TempDirectory}' does not exist");
        }
    }
}
