// Key-server benchmark. Run:
//   dotnet run -c Release --project bench/keyrelease/MilterSecureList.KeyRelease.Bench [-- --seconds 5 --clients 64]
// securelist-keyd's host runs in this process over TLS on loopback with a SQLite directory; one post is deposited for
// a release list of 64 RSA-2048 members. Requests are signed by the members before the clock starts (signing is the
// reader's cost, not the server's), each with a fresh nonce, so every request passes every check and is released.
// Reference, measured in the same run on all cores: the raw RSA-2048 operations one release needs (one private
// operation: the deposit's unwrap; two public ones: the member's signature and the wrap for the member).
// Prints: releases/s at --clients concurrent connections, the bound, their ratio (goal >= 0.7), and the p99 latency
// at half that rate (goal <= 20 ms), requests sent at even intervals.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using MilterSecureList.KeyRelease;
using MilterSecureList.KeyServer;
using MilterSecureList.Testing;

int seconds = Arg("--seconds", 5);
int clients = Arg("--clients", 64);
const string List = "bench@lists.test";
// The key server's release path is synchronous (database, RSA) on pool threads, and the load generator shares the
// pool: start with enough threads for every client instead of waiting for the pool's slow growth.
ThreadPool.SetMinThreads(4 * clients, 4 * clients);
Console.WriteLine($"securelist-keyd release benchmark ({Environment.ProcessorCount} cores, .NET {Environment.Version}, {clients} clients, {seconds} s)");

string dir = Directory.CreateTempSubdirectory("keyrel-bench-").FullName;
try
{
    var files = new KeyServerFiles(dir);
    var directory = new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = Path.Combine(dir, "lists.db") };
    string ini = Path.Combine(dir, "keyd.ini");
    File.WriteAllText(ini, files.KeydIni($"Provider = sqlite\nPath = {directory.Path}").Replace("RateLimit = 10000", "RateLimit = 1000000", StringComparison.Ordinal));
    string keys = Directory.CreateDirectory(Path.Combine(dir, "keys")).FullName;
    File.SetUnixFileMode(keys, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

    var sw = Stopwatch.StartNew();
    var members = new List<(string Address, X509Certificate2 Certificate, RSA Key)>();
    using (SqlDirectoryStore store = SqlDirectoryStore.Open(directory, TimeProvider.System))
    {
        var admin = new ListAdministration(store, new ListKeyStore(new KeysOptions { Directory = keys }), TimeProvider.System);
        admin.CreateList(List, ListMode.Rekey, null, ListKeyType.Rsa2048);
        admin.SetList(List, null, null, null, ["release=on"]);
        for (int i = 0; i < clients; i++)
        {
            string address = $"member{i}@bench.test";
            RSA key = RSA.Create(2048);
            var request = new CertificateRequest($"CN={address}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var san = new SubjectAlternativeNameBuilder();
            san.AddEmailAddress(address);
            request.CertificateExtensions.Add(san.Build());
            using X509Certificate2 made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
            X509Certificate2 cert = X509CertificateLoader.LoadCertificate(made.RawData);
            string pem = Path.Combine(dir, address + ".pem");
            File.WriteAllText(pem, cert.ExportCertificatePem());
            admin.AddMember(List, address, [pem], useOaep: false, allowMismatch: false);
            members.Add((address, cert, key));
        }
    }

    await using KeyServerHost host = KeyServerHost.Build(KeyServerConfiguration.Load(ini));
    await host.StartAsync();
    var url = new Uri(files.Url);

    // One post, sealed and deposited as the milter does it.
    X509Certificate2 releaseCert = X509CertificateLoader.LoadCertificateFromFile(files.ReleaseCertificate);
    byte[] post = OpensslFreePost(directory, keys);
    var policy = new ReleasePolicy(List, ReleaseMode.Rekey, "sender@bench.test", DateTimeOffset.UtcNow.AddDays(1));
    KeyReleaseSeal seal;
    using (SqlDirectoryStore store = SqlDirectoryStore.Open(directory, TimeProvider.System))
    {
        IReadOnlyList<ListKey> listKeys = [.. new ListDirectory(store, new ListKeyStore(new KeysOptions { Directory = keys }), TimeProvider.System)
            .GetListKeys(List).Select(p => new ListKey(p.Certificate, p.PrivateKey, ownsKey: false))];
        seal = KeyReleaseSealer.Seal(post, listKeys, CmsRecipient.FromCertificate(releaseCert), url.ToString(), policy, KeyReleaseEntry.NewMessageId());
    }

    var trust = new X509Certificate2Collection { X509CertificateLoader.LoadCertificateFromFile(files.TlsCertificate) };
    using (var milter = new KeyReleaseClient(trust, X509Certificate2.CreateFromPemFile(files.ClientCertificate, files.ClientKey), TimeSpan.FromSeconds(30)))
    {
        await milter.DepositAsync(url, KeyReleaseDeposit.From(seal), CancellationToken.None);
    }

    Console.WriteLine($"setup: {clients} members, keyd over TLS on {url}, one deposit ({sw.Elapsed.TotalSeconds:F1} s)");

    // The reference: raw RSA-2048 operations per release, all cores, same run.
    double bound = RawRsaBound(TimeSpan.FromSeconds(Math.Max(2, seconds / 2)));

    // Pre-signed requests: enough for the closed-loop run at a generous rate, plus the open-loop run.
    int needed = Math.Max(2000, (int)(bound * seconds * 1.2));
    Console.WriteLine($"signing {needed:N0} requests ...");
    var signed = new ConcurrentQueue<byte[]>();
    Parallel.For(0, needed, i =>
    {
        var m = members[i % members.Count];
        signed.Enqueue(new ReleaseRequest(seal.Entry.MessageId, m.Address, RandomNumberGenerator.GetBytes(32), DateTimeOffset.UtcNow, seal.Entry.Binding).Sign(m.Certificate, m.Key));
    });

    using var handler = new SocketsHttpHandler
    {
        MaxConnectionsPerServer = clients,
        SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && c.GetRawCertData().AsSpan().SequenceEqual(trust[0].RawData) },
    };
    using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
    var releaseUri = new Uri(url, "v1/release");
    long failures = 0;

    async Task<double> OneAsync()
    {
        if (!signed.TryDequeue(out byte[]? body))
        {
            return -1;
        }

        long start = Stopwatch.GetTimestamp();
        using HttpResponseMessage r = await http.PostAsJsonAsync(releaseUri, new ReleaseHttpRequest { Request = body }, KeyReleaseJson.Default.ReleaseHttpRequest);
        await r.Content.LoadIntoBufferAsync();
        if (!r.IsSuccessStatusCode)
        {
            Interlocked.Increment(ref failures);
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    // Warm up: open the connections, JIT the path.
    await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => OneAsync()));

    // Closed loop: CLIENTS concurrent requests for SECONDS.
    long done = 0;
    var deadline = DateTime.UtcNow.AddSeconds(seconds);
    var run = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
    {
        while (DateTime.UtcNow < deadline && await OneAsync() >= 0)
        {
            Interlocked.Increment(ref done);
        }
    }));
    double throughput = done / run.Elapsed.TotalSeconds;

    // Open loop at half that rate: requests at even intervals, latency per request.
    double rate = throughput / 2;
    int count = Math.Min(signed.Count, (int)(rate * seconds));
    var latencies = new ConcurrentBag<double>();
    var tasks = new List<Task>();
    var open = Stopwatch.StartNew();
    for (int i = 0; i < count; i++)
    {
        TimeSpan due = TimeSpan.FromSeconds(i / rate);
        TimeSpan wait = due - open.Elapsed;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        tasks.Add(Task.Run(async () => latencies.Add(await OneAsync())));
    }

    await Task.WhenAll(tasks);
    double[] sorted = [.. latencies.Where(l => l >= 0).Order()];
    double p50 = sorted[sorted.Length / 2];
    double p99 = sorted[(int)Math.Min(sorted.Length - 1, Math.Ceiling(sorted.Length * 0.99) - 1)];

    Console.WriteLine();
    Console.WriteLine($"releases/s at {clients} clients:        {throughput,10:F1}   ({done:N0} in {run.Elapsed.TotalSeconds:F1} s, {failures} refused)");
    Console.WriteLine($"raw RSA-2048 bound (1 priv + 2 pub): {bound,10:F1}   /s on {Environment.ProcessorCount} cores");
    Console.WriteLine($"ratio:                               {throughput / bound,10:F2}   (goal >= 0.70)");
    Console.WriteLine($"at half load ({rate:F0}/s, {sorted.Length} requests): p50 {p50:F1} ms, p99 {p99:F1} ms   (goal p99 <= 20 ms)");
    return failures == 0 ? 0 : 1;
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Directory.Delete(dir, recursive: true);
}

static double RawRsaBound(TimeSpan duration)
{
    // One private operation (PKCS#1 v1.5 decryption, as the deposit's unwrap) and two public ones (a signature
    // verification and an encryption) per release, on every core at once.
    using RSA key = RSA.Create(2048);
    byte[] cek = RandomNumberGenerator.GetBytes(32);
    byte[] wrapped = key.Encrypt(cek, RSAEncryptionPadding.Pkcs1);
    byte[] hash = SHA256.HashData(cek);
    byte[] signature = key.SignHash(hash, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    using RSA pub = RSA.Create(key.ExportParameters(false));
    long rounds = 0;
    var end = DateTime.UtcNow + duration;
    var sw = Stopwatch.StartNew();
    Parallel.For(0, Environment.ProcessorCount, _ =>
    {
        long mine = 0;
        while (DateTime.UtcNow < end)
        {
            key.Decrypt(wrapped, RSAEncryptionPadding.Pkcs1);
            pub.VerifyHash(hash, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            pub.Encrypt(cek, RSAEncryptionPadding.Pkcs1);
            mine++;
        }

        Interlocked.Add(ref rounds, mine);
    });
    return rounds / sw.Elapsed.TotalSeconds;
}

static byte[] OpensslFreePost(DirectoryOptions directory, string keys)
{
    // An ordinary client's post (EnvelopedData, AES-256-CBC, ktri PKCS#1 v1.5 to the list certificate).
    using SqlDirectoryStore store = SqlDirectoryStore.Open(directory, TimeProvider.System);
    X509Certificate2 listCert = new ListAdministration(store, new ListKeyStore(new KeysOptions { Directory = keys }), TimeProvider.System).GetCurrentCertificate(List);
    var envelope = new System.Security.Cryptography.Pkcs.EnvelopedCms(new System.Security.Cryptography.Pkcs.ContentInfo(RandomNumberGenerator.GetBytes(16 * 1024)),
        new System.Security.Cryptography.Pkcs.AlgorithmIdentifier(new System.Security.Cryptography.Oid("2.16.840.1.101.3.4.1.42")));
    envelope.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(System.Security.Cryptography.Pkcs.SubjectIdentifierType.IssuerAndSerialNumber, listCert));
    return envelope.Encode();
}

int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
}
