using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using MilterSecureList.Directory;

namespace MilterSecureList.Admin.DoubleWrap;

/// <summary>The list owner's roster (docs/double-wrap.md §3.1): for each member the certificates the owner accepted,
/// pinned in full. List keys are encrypted only to these; a certificate the server's directory holds but the roster
/// does not is shown and refused until the owner accepts it. Kept on the owner's machine, mode 0600; JSON:
/// <code>
/// { "format": "securelist-roster/1", "list": "crypto@lists.example.org",
///   "members": [ { "address": "alice@example.org", "certificates": [ "-----BEGIN CERTIFICATE-----..." ] } ] }
/// </code></summary>
public sealed class MemberRoster
{
    public const string Format = "securelist-roster/1";

    private readonly SortedDictionary<string, List<X509Certificate2>> _pins = new(StringComparer.Ordinal);

    private MemberRoster(string list) => List = EmailAddress.Normalize(list);

    public string List { get; }

    /// <summary>Members with at least one pinned certificate, in address order.</summary>
    public IEnumerable<string> Members => _pins.Keys;

    public IReadOnlyList<X509Certificate2> PinnedFor(string address) =>
        _pins.TryGetValue(EmailAddress.Normalize(address), out List<X509Certificate2>? pins) ? pins : [];

    public bool IsPinned(string address, X509Certificate2 certificate) =>
        PinnedFor(address).Any(p => p.RawData.AsSpan().SequenceEqual(certificate.RawData));

    /// <summary>Pins CERTIFICATE for ADDRESS; false when it was pinned already.</summary>
    public bool Accept(string address, X509Certificate2 certificate)
    {
        if (IsPinned(address, certificate))
        {
            return false;
        }

        string key = EmailAddress.Normalize(address);
        if (!_pins.TryGetValue(key, out List<X509Certificate2>? pins))
        {
            _pins[key] = pins = [];
        }

        pins.Add(certificate);
        return true;
    }

    /// <summary>Unpins one certificate (by SHA-256 fingerprint) or, with none given, the member; returns how many went.</summary>
    public int Remove(string address, string? fingerprint)
    {
        string key = EmailAddress.Normalize(address);
        if (!_pins.TryGetValue(key, out List<X509Certificate2>? pins))
        {
            return 0;
        }

        int removed = fingerprint is null ? pins.Count : pins.RemoveAll(p => FingerprintMatches(p, fingerprint));
        if (fingerprint is null || pins.Count == 0)
        {
            _pins.Remove(key);
        }

        return removed;
    }

    /// <summary>True when FINGERPRINT (hex, any case, colons optional) is the certificate's SHA-256 fingerprint.</summary>
    public static bool FingerprintMatches(X509Certificate2 certificate, string fingerprint) =>
        string.Equals(CertificateInspector.Sha256Fingerprint(certificate).Replace(":", string.Empty, StringComparison.Ordinal),
            fingerprint.Replace(":", string.Empty, StringComparison.Ordinal).Trim(), StringComparison.OrdinalIgnoreCase);

    /// <summary>Who gets a key message: every member of the export with a usable pinned certificate (the one that
    /// expires last). Everything else the export claims is refused with a reason: members the roster does not know,
    /// certificates it has not pinned, pinned certificates that expired.</summary>
    public DistributionPlan Plan(MemberExport export, DateTimeOffset now)
    {
        RequireSameList(export.List, "the member export");
        var recipients = new List<KeyRecipient>();
        var refused = new List<Refusal>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (ExportedMember member in export.Members)
        {
            seen.Add(EmailAddress.Normalize(member.Address));
            IReadOnlyList<X509Certificate2> pinned = PinnedFor(member.Address);
            foreach (X509Certificate2 certificate in member.Certificates.Where(c => !IsPinned(member.Address, c)))
            {
                refused.Add(new Refusal(member.Address, "certificate not accepted in your roster: not used", certificate));
            }

            X509Certificate2? best = pinned
                .Where(p => CertificateInspector.Check(p, now).IsUsable)
                .OrderByDescending(p => p.NotAfter)
                .FirstOrDefault();
            if (best is not null)
            {
                recipients.Add(new KeyRecipient(member.Address, best));
            }
            else
            {
                refused.Add(new Refusal(member.Address, pinned.Count == 0
                    ? "not in your roster: no key message"
                    : "no usable pinned certificate (" + string.Join("; ", pinned.Select(p => CertificateInspector.Check(p, now).Problem)) + "): no key message", null));
            }
        }

        return new DistributionPlan(recipients, refused, [.. _pins.Keys.Where(a => !seen.Contains(a))]);
    }

    public void RequireSameList(string list, string what)
    {
        if (!EmailAddress.Comparer.Equals(EmailAddress.Normalize(list), List))
        {
            throw new UsageException($"{what} is for {list}, the roster for {List}");
        }
    }

    /// <summary>Loads the roster, or starts an empty one for LIST when <paramref name="create"/> and the file is absent.</summary>
    public static MemberRoster Load(string path, string list, bool create)
    {
        if (!File.Exists(path))
        {
            return create
                ? new MemberRoster(list)
                : throw new UsageException($"{path}: no such roster (pin members with securelist listkey roster accept)");
        }

        try
        {
            ListKeyStore.CheckPrivateFile(path);
        }
        catch (DirectoryException e)
        {
            throw new UsageException(e.Message.Replace("private key file", "roster", StringComparison.Ordinal));
        }

        MemberRoster roster;
        try
        {
            JsonNode root = JsonNode.Parse(File.ReadAllText(path)) ?? throw new FormatException("empty");
            if ((string?)root["format"] != Format)
            {
                throw new FormatException($"format is not {Format}");
            }

            roster = new MemberRoster((string?)root["list"] ?? throw new FormatException("no list"));
            foreach (JsonNode? node in root["members"]?.AsArray() ?? throw new FormatException("no members array"))
            {
                string address = (string?)node?["address"] ?? throw new FormatException("a member without address");
                foreach (JsonNode? pem in node!["certificates"]?.AsArray() ?? [])
                {
                    roster.Accept(address, X509Certificate2.CreateFromPem((string?)pem ?? throw new FormatException($"{address}: a null certificate")));
                }
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or System.Security.Cryptography.CryptographicException)
        {
            throw new UsageException($"{path}: not a securelist roster: {e.Message.ReplaceLineEndings(" ")}");
        }

        roster.RequireSameList(list, path);
        return roster;
    }

    /// <summary>Writes the roster to a temporary 0600 file beside PATH and renames it over PATH.</summary>
    public void Save(string path)
    {
        var members = new JsonArray();
        foreach ((string address, List<X509Certificate2> pins) in _pins)
        {
            members.Add(new JsonObject
            {
                ["address"] = address,
                ["certificates"] = new JsonArray([.. pins.Select(c => (JsonNode)JsonValue.Create(CertificateInspector.ToPem(c)))]),
            });
        }

        string text = new JsonObject { ["format"] = Format, ["list"] = List, ["members"] = members }
            .ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        string temp = path + ".tmp";
        File.Delete(temp);
        using (var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
        }

        File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, path, overwrite: true);
    }
}

/// <summary>A member and the pinned certificate its key message is encrypted to.</summary>
public sealed record KeyRecipient(string Address, X509Certificate2 Certificate);

/// <summary>Something the server's export claims that the owner has not accepted.</summary>
public sealed record Refusal(string Address, string Reason, X509Certificate2? Certificate);

/// <summary>The outcome of <see cref="MemberRoster.Plan"/>.</summary>
/// <param name="PinnedNotMembers">Roster members the export does not list (removed on the server, or hidden by it).</param>
public sealed record DistributionPlan(IReadOnlyList<KeyRecipient> Recipients, IReadOnlyList<Refusal> Refused, IReadOnlyList<string> PinnedNotMembers);
