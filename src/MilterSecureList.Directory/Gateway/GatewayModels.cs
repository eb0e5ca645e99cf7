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
    private static readonly (string Name, CertificateTrust Value)[] s_trust =
        [("manual", CertificateTrust.Manual), ("ca-verified", CertificateTrust.CaVerified), ("harvested", CertificateTrust.Harvested)];

    private static readonly (string Name, EncryptPolicy Value)[] s_encrypt =
        [("required", EncryptPolicy.Required), ("opportunistic", EncryptPolicy.Opportunistic), ("never", EncryptPolicy.Never)];

    private static readonly (string Name, SignPolicy Value)[] s_sign = [("always", SignPolicy.Always), ("never", SignPolicy.Never)];

    public static string Format(CertificateTrust trust) => Name(s_trust, trust);

    public static bool TryParse(string? text, out CertificateTrust trust) => TryParse(s_trust, text, out trust);

    public static string Format(EncryptPolicy policy) => Name(s_encrypt, policy);

    public static bool TryParse(string? text, out EncryptPolicy policy) => TryParse(s_encrypt, text, out policy);

    public static string Format(SignPolicy policy) => Name(s_sign, policy);

    public static bool TryParse(string? text, out SignPolicy policy) => TryParse(s_sign, text, out policy);

    public static string Format(CorrespondentState state) => state == CorrespondentState.Pending ? "pending" : "active";

    private static string Name<T>((string Name, T Value)[] table, T value)
        where T : struct, Enum => table.First(e => e.Value.Equals(value)).Name;

    private static bool TryParse<T>((string Name, T Value)[] table, string? text, out T value)
        where T : struct, Enum
    {
        string key = text?.Trim().ToLowerInvariant() ?? string.Empty;
        foreach ((string name, T candidate) in table)
        {
            if (name == key)
            {
                value = candidate;
                return true;
            }
        }

        value = default;
        return false;
    }
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
