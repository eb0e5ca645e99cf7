// Directory benchmark: import 10,000 member certificates, then expand a 10,000-member list cold
// (fresh process state, empty cache) and warm (cached).
// Targets: import <= 1.5x parsing and checking the same certificates alone; warm <= 5 ms; cold <= 2 s.
// References measured in the same run: (a) parsing the same 10,000 DER certificates with
// X509CertificateLoader and nothing else; (b) the import's own per-entry work without the
// directory (read the file, parse, check key, validity and address).
// With --connection-string the same certificates go to SQLite and then to PostgreSQL.
//
// With --database FILE --list ADDRESS only the cold and warm expansion of that list in an existing SQLite
// database is measured (bench/lists/large.sh: the 100,000-member list it built with the CLI).
//
//   dotnet run -c Release --project bench/directory [-- --members N] [--rounds R] [--connection-string PG]
//   dotnet run -c Release --project bench/directory -- --database lists.db --list big@example.org
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;

int memberCount = 10_000;
string? connectionString = null;
string? existingDatabase = null;
string? existingList = null;
int rounds = 3;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--members" when i + 1 < args.Length:
            memberCount = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--connection-string" when i + 1 < args.Length:
            connectionString = args[++i];
            break;
        case "--database" when i + 1 < args.Length:
            existingDatabase = args[++i];
            break;
        case "--list" when i + 1 < args.Length:
            existingList = args[++i];
            break;
        case "--rounds" when i + 1 < args.Length:
            rounds = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        default:
            Console.Error.WriteLine("usage: directory-bench [--members N] [--rounds R] [--connection-string POSTGRES] | --database SQLITE --list ADDRESS");
            return 2;
    }
}

if (existingDatabase is not null || existingList is not null)
{
    if (existingDatabase is null || existingList is null)
    {
        Console.Error.WriteLine("directory-bench: --database and --list go together");
        return 2;
    }

    var options = new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = existingDatabase };
    string keys = System.IO.Directory.CreateTempSubdirectory("securelist-bench-keys-").FullName;
    try
    {
        // Reference: the same member rows read with bare ADO.NET (no statuses, no objects), the floor of a cold expansion.
        var clock = Stopwatch.StartNew();
        long rows = 0, bytes = 0;
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={existingDatabase};Mode=ReadOnly"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT m.address, m.use_oaep, c.der, c.not_before, c.not_after FROM members m JOIN lists l ON l.id = m.list_id " +
                "LEFT JOIN member_certificates c ON c.member_id = m.id WHERE l.address_norm = $list";
            command.Parameters.AddWithValue("$list", existingList.ToLowerInvariant());
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                rows++;
                bytes += reader.GetString(0).Length + (reader.IsDBNull(2) ? 0 : ((byte[])reader.GetValue(2)).Length);
            }
        }

        double referenceMs = clock.Elapsed.TotalMilliseconds;
        Console.WriteLine($"reference: bare SQLite read of the list's {rows} member rows ({bytes / 1_000_000.0:F1} MB)  {referenceMs,10:F1} ms");
        return MeasureExpansion(options, new KeysOptions { Directory = keys }, existingList, expectedMembers: null, parseMs: null, referenceMs);
    }
    finally
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        System.IO.Directory.Delete(keys, recursive: true);
    }
}

const double ImportTarget = 1.5;
string root = System.IO.Directory.CreateTempSubdirectory("securelist-bench-").FullName;
try
{
    var backends = new List<DirectoryOptions> { new() { Provider = DirectoryProvider.Sqlite, Path = Path.Combine(root, "lists.db") } };
    if (connectionString is not null)
    {
        backends.Add(new DirectoryOptions { Provider = DirectoryProvider.Postgres, ConnectionString = connectionString });
    }

    Console.WriteLine($"directory benchmark: {memberCount} members, back ends {string.Join(", ", backends.Select(b => b.Provider))}, {Environment.ProcessorCount} CPU(s)");

    // 1. Member certificates: RSA-2048 subject keys (a few, reused: key generation is not what we
    // measure) signed by one P-256 issuer (cheap signatures), written as PEM files like an operator's import directory.
    var clock = Stopwatch.StartNew();
    RSA[] subjectKeys = [.. Enumerable.Range(0, 4).Select(_ => RSA.Create(2048))];
    using ECDsa issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    X509SignatureGenerator issuer = X509SignatureGenerator.CreateForECDsa(issuerKey);
    var issuerName = new X500DistinguishedName("CN=Bench CA");
    string certDirectory = Path.Combine(root, "certs");
    System.IO.Directory.CreateDirectory(certDirectory);
    var ders = new List<byte[]>(memberCount);
    DateTimeOffset now = DateTimeOffset.UtcNow;
    for (int i = 0; i < memberCount; i++)
    {
        string address = $"member{i:D5}@example.org";
        var request = new CertificateRequest($"CN={address}", subjectKeys[i % subjectKeys.Length], HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature, true));
        byte[] serial = BitConverter.GetBytes(i + 1L);
        using X509Certificate2 cert = request.Create(issuerName, issuer, now.AddDays(-1), now.AddYears(2), serial);
        ders.Add(cert.RawData);
        File.WriteAllText(Path.Combine(certDirectory, address + ".pem"), cert.ExportCertificatePem());
    }

    Console.WriteLine($"generated {memberCount} certificates in {clock.Elapsed.TotalSeconds:F1} s (setup, not a figure)");

    // Reference (a): parse the same certificates, nothing else.
    clock.Restart();
    foreach (byte[] der in ders)
    {
        using X509Certificate2 parsed = X509CertificateLoader.LoadCertificate(der);
    }

    double parseMs = clock.Elapsed.TotalMilliseconds;
    Console.WriteLine($"reference: parse {memberCount} DER certificates                  {parseMs,10:F1} ms");

    foreach (DirectoryOptions directoryOptions in backends)
    {
        var keysOptions = new KeysOptions { Directory = Path.Combine(root, "keys-" + directoryOptions.Provider) };
        string listAddress = "big@example.org";
        Console.WriteLine();
        Console.WriteLine($"-- {directoryOptions.Provider}");

        // Reference (b) and the import, alternating for ROUNDS rounds on this shared machine: the
        // import's per-entry work on the same files without the directory, then the import itself
        // (the code path of `securelist member import --dir`). Medians and the median of the ratios.
        var checks = new List<double>();
        var imports = new List<double>();
        var stores = new List<double>();
        var ratios = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            IReadOnlyList<MemberImportEntry> entries = ListAdministration.ReadImportDirectory(certDirectory);
            clock.Restart();
            foreach (MemberImportEntry entry in entries)
            {
                if (!ListAdministration.TryCheckImportEntry(entry, allowMismatch: false, DateTimeOffset.UtcNow, out _, out ImportRefusal? refusal))
                {
                    Console.Error.WriteLine($"unexpected refusal: {refusal.Reason}");
                    return 1;
                }
            }

            double checkMs = clock.Elapsed.TotalMilliseconds;
            using SqlDirectoryStore store = SqlDirectoryStore.Open(directoryOptions, TimeProvider.System);
            var admin = new ListAdministration(store, new ListKeyStore(keysOptions), TimeProvider.System);
            if (store.TryGetList(listAddress, out _))
            {
                admin.DeleteList(listAddress);
            }

            admin.CreateList(listAddress, ListMode.Rekey, "owner@example.org", ListKeyType.P256);
            double storeStartMs = 0;
            clock.Restart();
            ImportSummary summary = admin.ImportMembers(listAddress, ListAdministration.ReadImportDirectory(certDirectory), allowMismatch: false, step =>
            {
                if (step.Phase == ImportPhase.Storing && storeStartMs == 0)
                {
                    storeStartMs = clock.Elapsed.TotalMilliseconds;
                }
            });
            double importMs = clock.Elapsed.TotalMilliseconds;
            if (summary.Refused.Count > 0 || summary.Accepted.Count != memberCount)
            {
                Console.Error.WriteLine($"unexpected refusals: {(summary.Refused.Count > 0 ? summary.Refused[0].Reason : "count")}");
                return 1;
            }

            checks.Add(checkMs);
            imports.Add(importMs);
            stores.Add(importMs - storeStartMs);
            ratios.Add(importMs / checkMs);
            Console.WriteLine($"round {round + 1}: read-parse-check alone {checkMs,8:F0} ms, import {importMs,8:F0} ms (storing {importMs - storeStartMs,6:F0} ms), ratio {importMs / checkMs:F2}x");
        }

        double ratio = Median(ratios);
        Console.WriteLine($"reference: read, parse and check {memberCount} certificate files  {Median(checks),10:F1} ms  (median of {rounds})");
        Console.WriteLine(
            $"import {memberCount} members (member import --dir)          {Median(imports),10:F1} ms  ({Median(imports) / memberCount * 1000:F0} us/member; storing {Median(stores):F0} ms) " +
            $"ratio {ratio:F2}x  target <= {ImportTarget}x  {(ratio <= ImportTarget ? "OK" : "MISSED")}  ({Median(imports) / parseMs:F1}x parse alone)");

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        int measured = MeasureExpansion(directoryOptions, keysOptions, listAddress, memberCount, parseMs);
        if (measured != 0)
        {
            return measured;
        }
    }

    foreach (RSA key in subjectKeys)
    {
        key.Dispose();
    }

    return 0;
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    System.IO.Directory.Delete(root, recursive: true);
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
}

// Cold: a fresh store and an empty cache, as a daemon right after start; then warm (what every message
// after the first pays), the first use of every certificate, and an uncached database read for comparison.
// parseMs (the DER-parse reference of this run) is null when the list came from an existing database.
static int MeasureExpansion(DirectoryOptions directoryOptions, KeysOptions keysOptions, string listAddress, int? expectedMembers, double? parseMs, double? readMs = null)
{
    string Ratio(double ms) => parseMs is double p ? $"  ({ms / p:F1}x parse)" : "";
    using SqlDirectoryStore store = SqlDirectoryStore.Open(directoryOptions, TimeProvider.System);
    var directory = new ListDirectory(store, new ListKeyStore(keysOptions), TimeProvider.System);
    var clock = Stopwatch.StartNew();
    using var cache = new CachingListDirectory(directory, TimeSpan.FromSeconds(2), TimeProvider.System);
    ExpandedList cold = cache.Expand(listAddress);
    double coldMs = clock.Elapsed.TotalMilliseconds;
    int count = cold.Members.Count;
    int usable = cold.Members.Count(m => m.Status == CertificateStatus.Usable);
    Console.WriteLine($"expand cold ({count} members, {usable} usable)                   {coldMs,10:F1} ms  target <= 2000 ms  {(coldMs <= 2000 ? "OK" : "MISSED")}{Ratio(coldMs)}{(readMs is double r ? $"  ({coldMs / r:F1}x the bare read)" : "")}");

    const int warmRounds = 10_000;
    var samples = new double[warmRounds];
    for (int i = 0; i < warmRounds; i++)
    {
        long start = Stopwatch.GetTimestamp();
        ExpandedList warm = cache.Expand(listAddress);
        samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (warm.Members.Count != (expectedMembers ?? count))
        {
            return 1;
        }
    }

    Array.Sort(samples);
    double median = samples[warmRounds / 2];
    double p99 = samples[(int)(warmRounds * 0.99)];
    Console.WriteLine($"expand warm (median of {warmRounds})                           {median * 1_000_000,10:F0} ns  p99 {p99 * 1_000_000:F0} ns  target <= 5 ms  {(p99 <= 5 ? "OK" : "MISSED")}");

    if (parseMs is null)
    {
        return 0; // an existing list (bench/lists/large.sh): the daemon's first post measures the rest
    }

    // Certificates are parsed on first use; the first message to a freshly loaded list pays this once
    // (then the parsed certificates stay in the cached expansion).
    clock.Restart();
    foreach (ExpandedMember member in cold.Members)
    {
        _ = member.Certificate!.PublicKey;
    }

    double materializeMs = clock.Elapsed.TotalMilliseconds;
    Console.WriteLine($"first use of all {count} member certificates (parse)             {materializeMs,10:F1} ms{Ratio(materializeMs)}");

    clock.Restart();
    directory.Expand(listAddress);
    Console.WriteLine($"expand uncached (database read), warm pool                {clock.Elapsed.TotalMilliseconds,10:F1} ms");
    return 0;
}
