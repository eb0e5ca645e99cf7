namespace MilterSecureList.Directory.Gateway;

/// <summary>How far a correspondent's certificate is trusted (docs/gateway.md, "Correspondents").</summary>
public enum CertificateTrust
{
    /// <summary>An operator imported it by hand.</summary>
    Manual,

    /// <summary>Imported after its chain was checked against the configured trust anchors.</summary>
    CaVerified,

    /// <summary>Taken from the signature of a verified inbound message.</summary>
    Harvested,
}

/// <summary>Whether the gateway may use a correspondent's certificate.</summary>
public enum CorrespondentState
{
    Active,

    /// <summary>A harvested certificate that would replace a pinned one: unused until an operator accepts it.</summary>
    Pending,
}

/// <summary><c>Encrypt = required | opportunistic | never</c>.</summary>
public enum EncryptPolicy
{
    Opportunistic,
    Required,
    Never,
}

/// <summary><c>Sign = always | never</c>.</summary>
public enum SignPolicy
{
    Always,
    Never,
}

/// <summary>The text forms used in the database, milter.ini and the CLI.</summary>
public static class GatewayNames
{
    public static string Format(CertificateTrust trust) => trust switch
    {
        CertificateTrust.Manual => "manual",
        CertificateTrust.CaVerified => "ca-verified",
        _ => "harvested",
    };

    public static bool TryParse(string? text, out CertificateTrust trust)
    {
        (bool ok, trust) = text?.Trim().ToLowerInvariant() switch
        {
            "manual" => (true, CertificateTrust.Manual),
            "ca-verified" => (true, CertificateTrust.CaVerified),
            "harvested" => (true, CertificateTrust.Harvested),
            _ => (false, CertificateTrust.Manual),
        };
        return ok;
    }

    public static string Format(EncryptPolicy policy) => policy switch
    {
        EncryptPolicy.Required => "required",
        EncryptPolicy.Never => "never",
        _ => "opportunistic",
    };

    public static bool TryParse(string? text, out EncryptPolicy policy)
    {
        (bool ok, policy) = text?.Trim().ToLowerInvariant() switch
        {
            "required" => (true, EncryptPolicy.Required),
            "opportunistic" => (true, EncryptPolicy.Opportunistic),
            "never" => (true, EncryptPolicy.Never),
            _ => (false, EncryptPolicy.Opportunistic),
        };
        return ok;
    }

    public static string Format(SignPolicy policy) => policy == SignPolicy.Never ? "never" : "always";

    public static bool TryParse(string? text, out SignPolicy policy)
    {
        (bool ok, policy) = text?.Trim().ToLowerInvariant() switch
        {
            "always" => (true, SignPolicy.Always),
            "never" => (true, SignPolicy.Never),
            _ => (false, SignPolicy.Always),
        };
        return ok;
    }

    public static string Format(CorrespondentState state) => state == CorrespondentState.Pending ? "pending" : "active";
}

/// <summary>
/// A local address the gateway signs and decrypts for. <see cref="CertificateDer"/> is null while a
/// certificate signing request is out with an external CA. <see cref="Chain"/> holds the DER
/// intermediates sent along with each signature. Null policies fall back to [Gateway] defaults.
/// </summary>
public sealed record GatewayUser(
    string Address,
    byte[]? CertificateDer,
    string KeyFile,
    IReadOnlyList<byte[]> Chain,
    EncryptPolicy? Encrypt,
    SignPolicy? Sign,
    bool? Opaque,
    DateTimeOffset CreatedAt);

/// <summary>
/// A correspondent's certificate. <see cref="Capabilities"/> is the DER of the SMIMECapabilities
/// attribute from their latest verified signature (RFC 8551 §2.5.2), null when never seen.
/// </summary>
public sealed record CorrespondentCertificate(
    long Id,
    string Address,
    byte[] Der,
    string Fingerprint,
    CertificateTrust Trust,
    CorrespondentState State,
    bool Pinned,
    byte[]? Capabilities,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    DateTimeOffset CreatedAt)
{
    public bool IsValidAt(DateTimeOffset now) => now >= NotBefore && now <= NotAfter;
}

/// <summary>What harvesting a certificate did to the directory.</summary>
public enum HarvestOutcome
{
    /// <summary>Already known: only its capabilities were refreshed.</summary>
    Refreshed,

    /// <summary>First certificate for the address: stored, pinned and used from now on.</summary>
    Added,

    /// <summary>The address has a pinned certificate: stored as pending until an operator accepts it.</summary>
    PendingAcceptance,
}
