using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using MilterSecureList.Directory;

namespace MilterSecureList.Admin.DoubleWrap;

/// <summary>One member as the server's directory states it: every certificate stored for the address.</summary>
public sealed record ExportedMember(string Address, bool Delivery, IReadOnlyList<X509Certificate2> Certificates);

/// <summary>What <c>securelist member export</c> writes on the server and the owner's <c>listkey</c> verbs read
/// (docs/double-wrap.md §4): the expanded members of a list with all their certificates. It is the server's word,
/// so the owner uses it only to learn who is a member; which certificate gets a list key is decided by the owner's
/// <see cref="MemberRoster"/>. JSON:
/// <code>
/// { "format": "securelist-members/1", "list": "crypto@lists.example.org", "mode": "double", "owner": "owner@example.org",
///   "members": [ { "address": "alice@example.org", "delivery": true, "certificates": [ "-----BEGIN CERTIFICATE-----..." ] } ] }
/// </code></summary>
public sealed record MemberExport(string List, string Mode, string? Owner, IReadOnlyList<ExportedMember> Members)
{
    public const string Format = "securelist-members/1";

    /// <summary>The expanded list (nested lists resolved) with every certificate of each member entry.</summary>
    public static MemberExport FromDirectory(AdminSession session, string list)
    {
        if (!session.Directory.TryGetList(list, out MailingList mailingList))
        {
            throw new UsageException($"no list {list}");
        }

        var entries = new Dictionary<string, IReadOnlyList<ListMember>>(EmailAddress.Comparer);
        var members = new List<ExportedMember>();
        foreach (ExpandedMember member in session.Directory.Expand(list).Members)
        {
            if (!entries.TryGetValue(member.ViaList, out IReadOnlyList<ListMember>? via))
            {
                via = session.Directory.MembersOf(member.ViaList);
                entries[member.ViaList] = via;
            }

            ListMember? entry = via.FirstOrDefault(m => EmailAddress.Comparer.Equals(m.Address, member.Address));
            IReadOnlyList<X509Certificate2> certificates = entry is null
                ? (member.Certificate is { } only ? [only] : [])
                : [.. entry.Certificates.Select(c => X509CertificateLoader.LoadCertificate(c.Der))];
            members.Add(new ExportedMember(member.Address, member.DeliveryEnabled, certificates));
        }

        return new MemberExport(mailingList.Address, MailingList.FormatMode(mailingList.Mode), mailingList.Owner, members);
    }

    public string ToJson()
    {
        var members = new JsonArray();
        foreach (ExportedMember member in Members)
        {
            members.Add(new JsonObject
            {
                ["address"] = member.Address,
                ["delivery"] = member.Delivery,
                ["certificates"] = new JsonArray([.. member.Certificates.Select(c => (JsonNode)JsonValue.Create(CertificateInspector.ToPem(c)))]),
            });
        }

        var root = new JsonObject
        {
            ["format"] = Format,
            ["list"] = List,
            ["mode"] = Mode,
            ["owner"] = Owner,
            ["members"] = members,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <exception cref="UsageException">Not a member export (one line naming the file).</exception>
    public static MemberExport Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"{path}: no such member export (make it on the server with securelist member export LIST --out FILE)");
        }

        try
        {
            JsonNode root = JsonNode.Parse(File.ReadAllText(path)) ?? throw new FormatException("empty");
            if ((string?)root["format"] != Format)
            {
                throw new FormatException($"format is not {Format}");
            }

            var members = new List<ExportedMember>();
            foreach (JsonNode? node in root["members"]?.AsArray() ?? throw new FormatException("no members array"))
            {
                string address = (string?)node?["address"] ?? throw new FormatException("a member without address");
                if (!EmailAddress.IsValid(address))
                {
                    throw new FormatException($"'{address}' is not a mail address");
                }

                var certificates = new List<X509Certificate2>();
                foreach (JsonNode? pem in node!["certificates"]?.AsArray() ?? [])
                {
                    certificates.Add(X509Certificate2.CreateFromPem((string?)pem ?? throw new FormatException($"{address}: a null certificate")));
                }

                members.Add(new ExportedMember(address, (bool?)node["delivery"] ?? true, certificates));
            }

            return new MemberExport(
                (string?)root["list"] ?? throw new FormatException("no list"),
                (string?)root["mode"] ?? "double",
                (string?)root["owner"],
                members);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or System.Security.Cryptography.CryptographicException)
        {
            throw new UsageException($"{path}: not a securelist member export: {e.Message.ReplaceLineEndings(" ")}");
        }
    }
}
