using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory.Storage;

namespace MilterSecureList.Directory;

/// <summary>Key algorithms <c>list create</c> and <c>list rollover</c> can generate.</summary>
public enum ListKeyType
{
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
}

/// <summary>One entry of a bulk member import.</summary>
/// <param name="Source">Where it came from ("members.csv:12", a file name) for the summary.</param>
/// <param name="Address">Null: take the certificate's address.</param>
public sealed record MemberImportEntry(string Source, string? Address, string CertificateFile, bool UseOaep);

/// <summary>An entry <c>member import</c> refused, and why.</summary>
public sealed record ImportRefusal(string Source, string? Address, string Reason);

/// <summary>Where a bulk import is: checking certificates, then storing the accepted members.</summary>
public enum ImportPhase
{
    Checking,
    Storing,
}

/// <summary>DONE of TOTAL entries checked (or accepted members stored).</summary>
public readonly record struct ImportProgress(ImportPhase Phase, int Done, int Total);

public sealed record ImportSummary(IReadOnlyList<string> Accepted, IReadOnlyList<ImportRefusal> Refused);

/// <summary>
/// The operator's verbs on the directory (what <c>securelist list|member ...</c> does), with every
/// check: address syntax, certificate acceptability, duplicates, nesting cycles, key-file modes.
/// </summary>
public sealed class ListAdministration
{
    /// <summary>Generated list certificates are valid this long (2-3 years is usual for S/MIME).</summary>
    public static readonly TimeSpan CertificateLifetime = TimeSpan.FromDays(3 * 365);

    private const string EmailProtectionOid = "1.3.6.1.5.5.7.3.4";

    private readonly SqlDirectoryStore _store;
    private readonly ListKeyStore _keys;
    private readonly TimeProvider _time;

    public ListAdministration(SqlDirectoryStore store, ListKeyStore keys, TimeProvider time)
    {
        _store = store;
        _keys = keys;
        _time = time;
    }

    public SqlDirectoryStore Store => _store;

    public static bool TryParseKeyType(string? text, out ListKeyType type)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "rsa2048": type = ListKeyType.Rsa2048; return true;
            case "rsa3072": type = ListKeyType.Rsa3072; return true;
            case "rsa4096": type = ListKeyType.Rsa4096; return true;
            case "p256": type = ListKeyType.P256; return true;
            case "p384": type = ListKeyType.P384; return true;
            default: type = default; return false;
        }
    }

    // ---- lists --------------------------------------------------------------------------

    /// <summary>Generates a key pair and a self-signed S/MIME certificate for ADDRESS and stores the list.</summary>
    public MailingList CreateList(string address, ListMode mode, string? owner, ListKeyType keyType)
    {
        address = EmailAddress.Require(address, "list address");
        owner = owner is null ? null : EmailAddress.Require(owner, "owner address");
        RequireNewList(address);
        DateTimeOffset now = _time.GetUtcNow();
        (X509Certificate2 certificate, AsymmetricAlgorithm key) = GenerateListCertificate(address, keyType, now);
        using (certificate)
        using (key)
        {
            return StoreNewList(address, mode, owner, certificate, key, now);
        }
    }

    /// <summary>Stores a list whose certificate (e.g. CA-issued) and private key the operator provides.</summary>
    public MailingList ImportList(string address, ListMode mode, string? owner, string certificateFile, string keyFile, bool allowMismatch)
    {
        address = EmailAddress.Require(address, "list address");
        owner = owner is null ? null : EmailAddress.Require(owner, "owner address");
        RequireNewList(address);
        DateTimeOffset now = _time.GetUtcNow();
        using X509Certificate2 certificate = CertificateInspector.LoadFile(certificateFile);
        CertificateInspector.RequireAcceptable(certificate, address, allowMismatch, now, certificateFile);
        using AsymmetricAlgorithm key = ListKeyStore.LoadPrivateKey(keyFile, certificate, static () => null);
        return StoreNewList(address, mode, owner, certificate, key, now);
    }

    private void RequireNewList(string address)
    {
        if (_store.TryGetList(address, out _))
        {
            throw new DirectoryException(DirectoryError.DuplicateList, $"list {address} already exists");
        }
    }

    private MailingList StoreNewList(string address, ListMode mode, string? owner, X509Certificate2 certificate, AsymmetricAlgorithm key, DateTimeOffset now)
    {
        var list = new MailingList(address, mode, owner, PostingPolicy.Open, MailingList.NoOptions);
        string keyFile = _keys.WriteKey(address, key, now);
        try
        {
            _store.CreateList(list, new ListKeyRecord(0, certificate.RawData, keyFile, isCurrent: true, isRetired: false, now));
        }
        catch
        {
            _keys.DeleteKey(keyFile);
            throw;
        }

        return list;
    }

    /// <summary>
    /// A self-signed S/MIME certificate for a list: SAN rfc822Name = the list address, keyUsage
    /// keyEncipherment (RSA) or keyAgreement (EC), EKU emailProtection (RFC 8550 section 4.4).
    /// </summary>
    public static (X509Certificate2 Certificate, AsymmetricAlgorithm PrivateKey) GenerateListCertificate(string address, ListKeyType type, DateTimeOffset now)
    {
        var name = new X500DistinguishedNameBuilder();
        name.AddEmailAddress(address);
        name.AddCommonName($"Encrypted mailing list {address}");
        X500DistinguishedName subject = name.Build();

        AsymmetricAlgorithm key;
        CertificateRequest request;
        X509KeyUsageFlags usage;
        switch (type)
        {
            case ListKeyType.P256:
            case ListKeyType.P384:
                var ec = ECDsa.Create(type == ListKeyType.P256 ? ECCurve.NamedCurves.nistP256 : ECCurve.NamedCurves.nistP384);
                key = ec;
                request = new CertificateRequest(subject, ec, type == ListKeyType.P256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA384);
                usage = X509KeyUsageFlags.KeyAgreement;
                break;
            default:
                var rsa = RSA.Create(type switch { ListKeyType.Rsa3072 => 3072, ListKeyType.Rsa4096 => 4096, _ => 2048 });
                key = rsa;
                request = new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                usage = X509KeyUsageFlags.KeyEncipherment;
                break;
        }

        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(EmailProtectionOid)], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));

        // Create (not CreateSelfSigned): an EC key limited to keyAgreement is not an ECDSA key
        // to .NET, so CreateSelfSigned's CopyWithPrivateKey would refuse it.
        X509SignatureGenerator signer = key is ECDsa ecdsa
            ? X509SignatureGenerator.CreateForECDsa(ecdsa)
            : X509SignatureGenerator.CreateForRSA((RSA)key, RSASignaturePadding.Pkcs1);
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // positive INTEGER (RFC 5280 section 4.1.2.2)
        using X509Certificate2 certificate = request.Create(subject, signer, now.AddMinutes(-5), now + CertificateLifetime, serial);
        return (X509CertificateLoader.LoadCertificate(certificate.RawData), key);
    }

    public void DeleteList(string address)
    {
        IReadOnlyList<string> files = _store.DeleteList(address);
        foreach (string file in files)
        {
            _keys.DeleteKey(file);
        }
    }

    /// <summary>
    /// Changes mode, owner, posting policy and options. OPTIONS are KEY=VALUE; an empty VALUE
    /// removes the override so the daemon's default applies again.
    /// </summary>
    public MailingList SetList(string address, ListMode? mode, string? owner, PostingPolicy? policy, IReadOnlyList<string> options)
    {
        MailingList list = _store.GetList(address);
        var map = new Dictionary<string, string>(list.Options, StringComparer.Ordinal);
        foreach (string option in options)
        {
            int eq = option.IndexOf('=');
            if (eq <= 0)
            {
                throw new DirectoryException(DirectoryError.InvalidArgument, $"--option '{option}' is not KEY=VALUE");
            }

            string key = option[..eq].Trim().ToLowerInvariant();
            string value = option[(eq + 1)..].Trim();
            if (value.Length == 0)
            {
                if (ListOptionKeys.Check(key, "x") is { } unknown && unknown.StartsWith("unknown", StringComparison.Ordinal))
                {
                    throw new DirectoryException(DirectoryError.InvalidArgument, unknown);
                }

                map.Remove(key);
                continue;
            }

            if (ListOptionKeys.Check(key, value) is { } problem)
            {
                throw new DirectoryException(DirectoryError.InvalidArgument, problem);
            }

            map[key] = value;
        }

        var updated = list with
        {
            Mode = mode ?? list.Mode,
            Owner = owner is null ? list.Owner : EmailAddress.Require(owner, "owner address"),
            PostingPolicy = policy ?? list.PostingPolicy,
            Options = map,
        };
        _store.UpdateList(updated);
        return updated;
    }

    /// <summary>The certificate senders encrypt to.</summary>
    public X509Certificate2 GetCurrentCertificate(string address)
    {
        foreach (ListKeyRecord record in _store.GetListKeys(address))
        {
            if (record.IsCurrent)
            {
                return X509CertificateLoader.LoadCertificate(record.Certificate);
            }
        }

        throw new DirectoryException(DirectoryError.Corrupt, $"list {address} has no current key");
    }

    /// <summary>
    /// Makes a new key current. The previous keys stay active so posts already encrypted to them
    /// (senders with the old certificate) still decrypt. Default key type: the current key's.
    /// </summary>
    public X509Certificate2 Rollover(string address, ListKeyType? keyType)
    {
        MailingList list = _store.GetList(address);
        ListKeyType type;
        if (keyType is { } chosen)
        {
            type = chosen;
        }
        else
        {
            using X509Certificate2 current = GetCurrentCertificate(list.Address);
            type = CertificateInspector.DescribeKey(current) switch
            {
                "EC P-256" => ListKeyType.P256,
                "EC P-384" or "EC P-521" => ListKeyType.P384,
                "RSA-3072" => ListKeyType.Rsa3072,
                "RSA-4096" => ListKeyType.Rsa4096,
                _ => ListKeyType.Rsa2048,
            };
        }

        DateTimeOffset now = _time.GetUtcNow();
        (X509Certificate2 certificate, AsymmetricAlgorithm key) = GenerateListCertificate(list.Address, type, now);
        using (key)
        {
            string keyFile = _keys.WriteKey(list.Address, key, now);
            try
            {
                _store.AddListKey(list.Address, new ListKeyRecord(0, certificate.RawData, keyFile, isCurrent: true, isRetired: false, now));
            }
            catch
            {
                _keys.DeleteKey(keyFile);
                certificate.Dispose();
                throw;
            }
        }

        return certificate;
    }

    // ---- members ------------------------------------------------------------------------

    /// <summary>
    /// Adds a member. When ADDRESS is another list it is nested (no certificate; refused if it
    /// would make a cycle). Otherwise at least one acceptable certificate is required.
    /// </summary>
    public void AddMember(string listAddress, string address, IReadOnlyList<string> certificateFiles, bool useOaep, bool allowMismatch, string? pkcs12Password = null)
    {
        MailingList list = _store.GetList(listAddress);
        address = EmailAddress.Require(address, "member address");
        if (_store.TryGetList(address, out MailingList nested))
        {
            if (certificateFiles.Count > 0)
            {
                throw new DirectoryException(DirectoryError.InvalidArgument, $"{address} is a list (nesting): members of a nested list bring their own certificates; drop --cert");
            }

            RequireNoCycle(list.Address, nested.Address);
            _store.AddMembers(list.Address, [new ListMember(nested.Address, [])]);
            return;
        }

        if (certificateFiles.Count == 0)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{address} needs a certificate: give --cert FILE (only another list's address, to nest it, is added without one)");
        }

        DateTimeOffset now = _time.GetUtcNow();
        var certificates = new List<MemberCertificate>();
        foreach (string file in certificateFiles)
        {
            using X509Certificate2 certificate = CertificateInspector.LoadFile(file, pkcs12Password);
            CertificateInspector.RequireAcceptable(certificate, address, allowMismatch, now, file);
            certificates.Add(MemberCertificate.FromAccepted(certificate));
        }

        _store.AddMembers(list.Address, [new ListMember(address, certificates, useOaep)]);
    }

    /// <summary>Refuses LIST -> MEMBER when MEMBER already reaches LIST; the message names the cycle.</summary>
    private void RequireNoCycle(string listAddress, string memberList)
    {
        string from = EmailAddress.Normalize(memberList);
        string target = EmailAddress.Normalize(listAddress);
        var children = _store.GetNestingEdges()
            .GroupBy(e => e.List, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(e => e.Member).ToList(), StringComparer.Ordinal);

        // Depth-first search from the new member for a path back to the list.
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var path = new List<string>();
        if (Reaches(from))
        {
            throw new DirectoryException(
                DirectoryError.Cycle,
                $"adding {memberList} to {listAddress} would create a cycle: {target} -> {string.Join(" -> ", path)}");
        }

        bool Reaches(string node)
        {
            path.Add(node);
            if (node == target)
            {
                return true;
            }

            if (visited.Add(node) && children.TryGetValue(node, out List<string>? next))
            {
                foreach (string child in next)
                {
                    if (Reaches(child))
                    {
                        return true;
                    }
                }
            }

            path.RemoveAt(path.Count - 1);
            return false;
        }
    }

    public void SetMember(string listAddress, string address, bool? useOaep, bool? deliveryEnabled, IReadOnlyList<string> addCertificateFiles, bool allowMismatch)
    {
        var certificates = new List<MemberCertificate>();
        DateTimeOffset now = _time.GetUtcNow();
        foreach (string file in addCertificateFiles)
        {
            using X509Certificate2 certificate = CertificateInspector.LoadFile(file);
            CertificateInspector.RequireAcceptable(certificate, address, allowMismatch, now, file);
            certificates.Add(MemberCertificate.FromAccepted(certificate));
        }

        _store.UpdateMember(listAddress, address, useOaep, deliveryEnabled, certificates);
    }

    public void RemoveMember(string listAddress, string address) => _store.RemoveMember(listAddress, address);

    public IReadOnlyList<ListMember> GetMembers(string listAddress) => _store.GetMembers(listAddress);

    /// <summary>
    /// Bulk import: every entry is checked on its own (certificate, address, duplicates within the
    /// batch and against the list); the acceptable ones are stored in one transaction, in
    /// multi-row batches. PROGRESS hears about both phases (checking, then storing).
    /// </summary>
    public ImportSummary ImportMembers(string listAddress, IReadOnlyList<MemberImportEntry> entries, bool allowMismatch, Action<ImportProgress>? progress = null)
    {
        MailingList list = _store.GetList(listAddress);
        // Two reads up front instead of a list lookup per entry (a round trip each on PostgreSQL).
        var present = new HashSet<string>(_store.GetMemberAddresses(list.Address), StringComparer.Ordinal);
        IReadOnlySet<string> lists = _store.GetListAddresses();
        DateTimeOffset now = _time.GetUtcNow();
        var accepted = new List<ListMember>();
        var refused = new List<ImportRefusal>();
        int done = 0;
        foreach (MemberImportEntry entry in entries)
        {
            if (!TryCheckImportEntry(entry, allowMismatch, now, out ListMember? member, out ImportRefusal? refusal))
            {
                refused.Add(refusal);
            }
            else if (lists.Contains(EmailAddress.Normalize(member.Address)))
            {
                refused.Add(new ImportRefusal(entry.Source, member.Address, $"{member.Address} is a list; nest it with member add"));
            }
            else if (!present.Add(EmailAddress.Normalize(member.Address)))
            {
                refused.Add(new ImportRefusal(entry.Source, member.Address, $"{member.Address} is already a member of {list.Address}"));
            }
            else
            {
                accepted.Add(member);
            }

            progress?.Invoke(new ImportProgress(ImportPhase.Checking, ++done, entries.Count));
        }

        if (accepted.Count > 0)
        {
            _store.AddMembers(list.Address, accepted, stored => progress?.Invoke(new ImportProgress(ImportPhase.Storing, stored, accepted.Count)));
        }

        return new ImportSummary(accepted.Select(m => m.Address).ToList(), refused);
    }

    /// <summary>
    /// The per-entry half of an import, without the directory: read and parse the certificate,
    /// take the address from it when the entry gives none, check key, validity and address.
    /// Whether the address is already a member or a list is the caller's part.
    /// </summary>
    public static bool TryCheckImportEntry(
        MemberImportEntry entry,
        bool allowMismatch,
        DateTimeOffset now,
        [NotNullWhen(true)] out ListMember? member,
        [NotNullWhen(false)] out ImportRefusal? refusal)
    {
        string? address = entry.Address;
        try
        {
            using X509Certificate2 certificate = CertificateInspector.LoadFile(entry.CertificateFile);
            if (address is null)
            {
                IReadOnlyList<string> names = CertificateInspector.GetEmailAddresses(certificate);
                address = names.Count > 0 ? names[0] : throw new DirectoryException(DirectoryError.BadCertificate, "certificate names no mail address and the entry gives none");
            }

            address = EmailAddress.Require(address, "member address");
            CertificateInspector.RequireAcceptable(certificate, address, allowMismatch, now, Path.GetFileName(entry.CertificateFile));
            member = new ListMember(address, [MemberCertificate.FromAccepted(certificate)], entry.UseOaep);
            refusal = null;
            return true;
        }
        catch (DirectoryException e)
        {
            member = null;
            refusal = new ImportRefusal(entry.Source, address, e.Message);
            return false;
        }
    }

    /// <summary>Certificate files of a directory; the address is the file name's stem when it is one (alice@example.org.pem).</summary>
    public static IReadOnlyList<MemberImportEntry> ReadImportDirectory(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"--dir {directory}: no such directory");
        }

        string[] extensions = [".pem", ".crt", ".cer", ".der", ".p12", ".pfx"];
        var entries = new List<MemberImportEntry>();
        foreach (string file in System.IO.Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
        {
            string extension = Path.GetExtension(file).ToLowerInvariant();
            if (Array.IndexOf(extensions, extension) < 0)
            {
                continue;
            }

            string stem = Path.GetFileNameWithoutExtension(file);
            entries.Add(new MemberImportEntry(Path.GetFileName(file), EmailAddress.IsValid(stem) ? stem : null, file, UseOaep: false));
        }

        return entries;
    }

    /// <summary>
    /// CSV lines <c>address,certificate-file[,oaep]</c>; '#' comments and a header line starting
    /// with "address" are skipped; relative paths are relative to the CSV file.
    /// </summary>
    public static IReadOnlyList<MemberImportEntry> ReadImportCsv(string csvFile)
    {
        if (!File.Exists(csvFile))
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"--csv {csvFile}: no such file");
        }

        string baseDirectory = Path.GetDirectoryName(Path.GetFullPath(csvFile))!;
        var entries = new List<MemberImportEntry>();
        int lineNumber = 0;
        foreach (string raw in File.ReadLines(csvFile))
        {
            lineNumber++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || (lineNumber == 1 && line.StartsWith("address", StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            string[] fields = line.Split(',', StringSplitOptions.TrimEntries);
            string source = $"{Path.GetFileName(csvFile)}:{lineNumber}";
            string file = fields.Length > 1 ? fields[1] : string.Empty;
            bool oaep = fields.Length > 2 && fields[2].ToLowerInvariant() is "oaep" or "yes" or "true" or "1";
            entries.Add(new MemberImportEntry(
                source,
                fields[0].Length == 0 ? null : fields[0],
                file.Length == 0 ? string.Empty : Path.Combine(baseDirectory, file),
                oaep));
        }

        return entries;
    }
}
