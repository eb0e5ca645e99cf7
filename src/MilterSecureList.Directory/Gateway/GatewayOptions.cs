using System.Globalization;

namespace MilterSecureList.Directory.Gateway;

/// <summary>What to do with an inbound signature that does not verify.</summary>
public enum InvalidSignatureAction
{
    /// <summary><c>550 5.7.1</c> with the reason: tampered or forged mail is never queued.</summary>
    Reject,

    /// <summary>Deliver, with <c>smime=fail</c> in Authentication-Results and the reason.</summary>
    Warn,
}

/// <summary>Encrypt and sign overrides for one recipient domain (<c>[Gateway] DomainPolicy</c>).</summary>
public sealed record DomainPolicy(EncryptPolicy? Encrypt, SignPolicy? Sign);

/// <summary>
/// The <c>[Gateway]</c> section of milter.ini, shared by the daemon and the CLI (documented key by key in
/// milter.ini.example and docs/gateway.md). Bind with a key lookup, then <see cref="Validate"/>.
/// </summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>The authserv-id of Authentication-Results headers we add and remove (RFC 8601 §2.5).</summary>
    public string AuthservId { get; set; } = Environment.MachineName;

    /// <summary>PEM file of CA certificates inbound signatures must chain to.</summary>
    public string? TrustAnchors { get; set; }

    public EncryptPolicy Encrypt { get; set; } = EncryptPolicy.Opportunistic;

    public SignPolicy Sign { get; set; } = SignPolicy.Always;

    /// <summary>Opaque (application/pkcs7-mime signed-data) instead of multipart/signed.</summary>
    public bool Opaque { get; set; }

    public InvalidSignatureAction InvalidSignature { get; set; } = InvalidSignatureAction.Reject;

    /// <summary>Store certificates and capabilities of verified inbound signatures as <c>harvested</c>.</summary>
    public bool Harvest { get; set; } = true;

    /// <summary>Per recipient domain (lower case), e.g. <c>partner.example:required, old.example:never:never</c>.</summary>
    public IReadOnlyDictionary<string, DomainPolicy> Domains { get; set; } = new Dictionary<string, DomainPolicy>(StringComparer.Ordinal);

    /// <summary>Local CA for <c>securelist user add --generate</c>: certificate and 0600 key file.</summary>
    public string? CaCertificate { get; set; }

    public string? CaKey { get; set; }

    public int CaValidityDays { get; set; } = 730;

    /// <summary>Key servers whose key-release posts the gateway fetches keys from for its users (https URLs,
    /// compared without a trailing slash); empty: no automatic fetch, such posts stay encrypted.</summary>
    public IReadOnlyList<string> KeyServers { get; set; } = [];

    public static GatewayOptions Bind(Func<string, string?> value, List<string> problems)
    {
        var o = new GatewayOptions();
        o.AuthservId = value(nameof(AuthservId))?.Trim() is { Length: > 0 } id ? id : o.AuthservId;
        o.TrustAnchors = Empty(value(nameof(TrustAnchors)));
        o.CaCertificate = Empty(value(nameof(CaCertificate)));
        o.CaKey = Empty(value(nameof(CaKey)));
        if (value(nameof(Encrypt)) is { } encrypt)
        {
            o.Encrypt = GatewayNames.TryParse(encrypt, out EncryptPolicy e) ? e : Problem(problems, nameof(Encrypt), encrypt, "required, opportunistic, never", o.Encrypt);
        }

        if (value(nameof(Sign)) is { } sign)
        {
            o.Sign = GatewayNames.TryParse(sign, out SignPolicy s) ? s : Problem(problems, nameof(Sign), sign, "always, never", o.Sign);
        }

        o.Opaque = Bool(value(nameof(Opaque)), nameof(Opaque), o.Opaque, problems);
        o.Harvest = Bool(value(nameof(Harvest)), nameof(Harvest), o.Harvest, problems);
        if (value(nameof(InvalidSignature)) is { } invalid)
        {
            o.InvalidSignature = invalid.Trim().ToLowerInvariant() switch
            {
                "reject" => InvalidSignatureAction.Reject,
                "warn" => InvalidSignatureAction.Warn,
                _ => Problem(problems, nameof(InvalidSignature), invalid, "reject, warn", o.InvalidSignature),
            };
        }

        if (value(nameof(CaValidityDays)) is { } days)
        {
            if (int.TryParse(days.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int d) && d is >= 1 and <= 36500)
            {
                o.CaValidityDays = d;
            }
            else
            {
                problems.Add($"[Gateway] CaValidityDays: '{days}' is not a number of days in 1..36500");
            }
        }

        if (value("DomainPolicy") is { } domains)
        {
            o.Domains = ParseDomains(domains, problems);
        }

        if (value(nameof(KeyServers)) is { } servers)
        {
            var list = new List<string>();
            foreach (string url in servers.Split([',', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (KeyServerKey(url) is { } key)
                {
                    list.Add(key);
                }
                else
                {
                    problems.Add($"[Gateway] KeyServers: '{url}' is not an https URL such as https://keys.example.org:8443/");
                }
            }

            o.KeyServers = list;
        }

        return o;
    }

    /// <summary>Problems as "[Gateway] Key: problem" lines; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (TrustAnchors is not null && !File.Exists(TrustAnchors))
        {
            problems.Add($"[Gateway] TrustAnchors: {TrustAnchors} does not exist");
        }

        if ((CaCertificate is null) != (CaKey is null))
        {
            problems.Add("[Gateway] CaKey: CaCertificate and CaKey go together");
        }

        if (AuthservId.Any(c => c is ' ' or '\t' or ';' or '(' or ')' or '"' or '\r' or '\n'))
        {
            problems.Add($"[Gateway] AuthservId: '{AuthservId}' is not a single token");
        }

        return problems;
    }

    /// <summary>Whether KEYSERVER (the URL in a key-release entry, an outsider's choice) is one of <see cref="KeyServers"/>.</summary>
    public bool FetchesFrom(string keyServer) => KeyServerKey(keyServer) is { } key && KeyServers.Contains(key, StringComparer.Ordinal);

    /// <summary>An https URL without query, fragment or user info, normalised (host lower case, default port dropped,
    /// no trailing slash); null for anything else.</summary>
    private static string? KeyServerKey(string url) =>
        Uri.TryCreate(url.Trim(), UriKind.Absolute, out Uri? uri) && uri.Scheme == Uri.UriSchemeHttps
            && uri.Query.Length == 0 && uri.Fragment.Length == 0 && uri.UserInfo.Length == 0
            ? uri.GetLeftPart(UriPartial.Path).TrimEnd('/')
            : null;

    /// <summary>The effective policy towards RECIPIENT for USER (null when the sender is no gateway user).</summary>
    public (EncryptPolicy Encrypt, SignPolicy Sign) PolicyFor(GatewayUser? user, string recipient)
    {
        int at = recipient.LastIndexOf('@');
        string domain = at < 0 ? string.Empty : recipient[(at + 1)..].ToLowerInvariant();
        Domains.TryGetValue(domain, out DomainPolicy? forDomain);
        return (forDomain?.Encrypt ?? user?.Encrypt ?? Encrypt, forDomain?.Sign ?? user?.Sign ?? Sign);
    }

    private static Dictionary<string, DomainPolicy> ParseDomains(string text, List<string> problems)
    {
        var map = new Dictionary<string, DomainPolicy>(StringComparer.Ordinal);
        foreach (string entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] parts = entry.Split(':', StringSplitOptions.TrimEntries);
            EncryptPolicy? encrypt = null;
            SignPolicy? sign = null;
            bool ok = parts.Length is 2 or 3 && parts[0].Length > 0 && !parts[0].Contains('@');
            if (ok && parts[1].Length > 0)
            {
                ok = GatewayNames.TryParse(parts[1], out EncryptPolicy e);
                encrypt = e;
            }

            if (ok && parts.Length == 3 && parts[2].Length > 0)
            {
                ok = GatewayNames.TryParse(parts[2], out SignPolicy s);
                sign = s;
            }

            if (!ok)
            {
                problems.Add($"[Gateway] DomainPolicy: '{entry}' is not DOMAIN:ENCRYPT[:SIGN] (ENCRYPT required|opportunistic|never, SIGN always|never)");
                continue;
            }

            map[parts[0].ToLowerInvariant()] = new DomainPolicy(encrypt, sign);
        }

        return map;
    }

    private static string? Empty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static bool Bool(string? text, string key, bool fallback, List<string> problems) => text?.Trim().ToLowerInvariant() switch
    {
        null => fallback,
        "yes" or "true" or "on" or "1" => true,
        "no" or "false" or "off" or "0" => false,
        _ => Problem(problems, key, text, "yes, no", fallback),
    };

    private static T Problem<T>(List<string> problems, string key, string value, string choices, T fallback)
    {
        problems.Add($"[Gateway] {key}: '{value}' is not one of {choices}");
        return fallback;
    }
}
