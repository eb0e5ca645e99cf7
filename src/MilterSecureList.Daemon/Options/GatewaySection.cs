using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Daemon.Options;

/// <summary>[Gateway]: S/MIME on behalf of local users (bound by the Directory layer, as the CLI does; docs/gateway.md).</summary>
public sealed class GatewaySection : OptionsSection
{
    private static readonly string[] s_keys =
    [
        "AuthservId", "TrustAnchors", "Encrypt", "Sign", "Opaque", "InvalidSignature", "Harvest", "DomainPolicy",
        "CaCertificate", "CaKey", "CaValidityDays", "KeyServers",
    ];

    public override string SectionName => GatewayOptions.SectionName;

    public GatewayOptions Options { get; private set; } = new();

    public override void Load(IniSection section)
    {
        var values = s_keys.ToDictionary(k => k, k => section.GetString(k, string.Empty), StringComparer.Ordinal);
        var problems = new List<string>();
        GatewayOptions options = GatewayOptions.Bind(key => values.TryGetValue(key, out string? v) && v.Length > 0 ? v : null, problems);
        problems.AddRange(options.Validate());
        section.ThrowFirst(problems);
        Options = options;
    }
}
