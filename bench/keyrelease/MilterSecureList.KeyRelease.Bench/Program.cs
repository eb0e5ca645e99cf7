// Key-server benchmark. Run:
//   dotnet run -c Release --project bench/keyrelease/MilterSecureList.KeyRelease.Bench [-- --seconds 5 --clients 64 --no-profile --min-threads 64]
// securelist-keyd's host runs in this process over TLS on loopback with a SQLite directory; one post is deposited for
// a release list of 64 RSA-2048 members. Requests are signed by the members before the clock starts (signing is the
// reader's cost, not the server's), each with a fresh nonce, so every request passes every check and is released.
// Reference, measured in the same run on all cores: the raw RSA-2048 operations one release needs (one private
// operation: the deposit's unwrap; two public ones: the member's signature and the wrap for the member).
// The load generator is a child process (this program with --load-child): HTTP/1.1 keep-alive over one TLS connection
// per client, bodies serialised before the clock starts; both processes' CPU time is read over the measuring window,
// so the key server's CPU per release and the load generator's share of the two cores are printed, not guessed.
// Closed loop: the clients run through a warm-up (until each process spends < 1 % of 2 s in the JIT, at most 8 s)
// and then the --seconds window; a release counts when its response
// arrives inside the window (requests still in flight at the window's end are not counted; how long they took to
// drain is printed). Open loop at half that rate: requests at even intervals, latency per request.
// Prints: releases/s at --clients, the bound, their ratio (goal >= 0.7), p99 at half load (goal <= 20 ms), the CPU
// split, and (unless --no-profile) the single-thread cost of each step of a release against the raw RSA operations.
using System.Diagnostics;
using System.Text.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Storage;
using MilterSecureList.KeyRelease;
using MilterSecureList.KeyServer;
using MilterSecureList.Testing;

if (args.Length > 0 && args[0] == "--load-child")
{
    return await LoadGenerator.RunAsync(args[1..]);
}

int seconds = Arg("--seconds", 5);
int clients = Arg("--clients", 64);
bool profile = Array.IndexOf(args, "--no-profile") < 0;
const double WarmupSeconds = 2; // the window opens once the JIT has settled over this long in both processes (at most 4x)
Console.WriteLine($"securelist-keyd release benchmark ({Environment.ProcessorCount} cores, .NET {Environment.Version}, {clients} clients, {seconds} s, load average {LoadAverage()})");

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
    var members = new (string Address, X509Certificate2 Certificate, RSA Key)[clients];
    Parallel.For(0, clients, i =>
    {
        string address = $"member{i}@bench.test";
        RSA key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={address}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddEmailAddress(address);
        request.CertificateExtensions.Add(san.Build());
        using X509Certificate2 made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        members[i] = (address, X509CertificateLoader.LoadCertificate(made.RawData), key);
    });
    using (SqlDirectoryStore store = SqlDirectoryStore.Open(directory, TimeProvider.System))
    {
        var admin = new ListAdministration(store, new ListKeyStore(new KeysOptions { Directory = keys }), TimeProvider.System);
        admin.CreateList(BenchList, ListMode.Rekey, null, ListKeyType.Rsa2048);
        admin.SetList(BenchList, null, null, null, ["release=on"]);
        foreach ((string address, X509Certificate2 cert, _) in members)
        {
            string pem = Path.Combine(dir, address + ".pem");
            File.WriteAllText(pem, cert.ExportCertificatePem());
            admin.AddMember(BenchList, address, [pem], useOaep: false, allowMismatch: false);
        }
    }

    // The server's pool as securelist-keyd sets it (Program.Main); --min-threads N tries another floor.
    ThreadPool.GetMinThreads(out int minWorkers, out int minIo);
    ThreadPool.SetMinThreads(Math.Max(minWorkers, Arg("--min-threads", 64)), minIo);
    await using KeyServerHost host = KeyServerHost.Build(KeyServerConfiguration.Load(ini));
    await host.StartAsync();
    var url = new Uri(files.Url);

    // One post, sealed and deposited as the milter does it.
    X509Certificate2 releaseCert = X509CertificateLoader.LoadCertificateFromFile(files.ReleaseCertificate);
    byte[] post = OpensslFreePost(directory, keys);
    var policy = new ReleasePolicy(BenchList, ReleaseMode.Rekey, "sender@bench.test", DateTimeOffset.UtcNow.AddDays(1));
    KeyReleaseSeal seal;
    using (SqlDirectoryStore store = SqlDirectoryStore.Open(directory, TimeProvider.System))
    {
        IReadOnlyList<ListKey> listKeys = [.. new ListDirectory(store, new ListKeyStore(new KeysOptions { Directory = keys }), TimeProvider.System)
            .GetListKeys(BenchList).Select(p => new ListKey(p.Certificate, p.PrivateKey, ownsKey: false))];
        seal = KeyReleaseSealer.Seal(post, listKeys, CmsRecipient.FromCertificate(releaseCert), url.ToString(), policy, KeyReleaseEntry.NewMessageId());
    }

    var trust = new X509Certificate2Collection { X509CertificateLoader.LoadCertificateFromFile(files.TlsCertificate) };
    using (var milter = new KeyReleaseClient(trust, X509Certificate2.CreateFromPemFile(files.ClientCertificate, files.ClientKey), TimeSpan.FromSeconds(30)))
    {
        await milter.DepositAsync(url, KeyReleaseDeposit.From(seal), CancellationToken.None);
    }

    Console.WriteLine($"setup: {clients} members, keyd over TLS on {url}, one deposit ({sw.Elapsed.TotalSeconds:F1} s)");

    // The reference: raw RSA-2048 operations per release, all cores, same run.
    (double bound, double rsaCpuMs) = RawRsaBound(TimeSpan.FromSeconds(Math.Max(2, seconds / 2)));

    // Pre-signed requests: the server cannot beat the bound, so this covers warm-up, window and the open loop.
    int needed = (int)(bound * ((4 * WarmupSeconds) + seconds + (seconds / 2.0)) * 1.1) + (2 * clients) + (profile ? 1000 : 0);
    Console.WriteLine($"signing {needed:N0} requests ...");
    var signed = new byte[needed][];
    Parallel.For(0, needed, i =>
    {
        var m = members[i % members.Length];
        signed[i] = new ReleaseRequest(seal.Entry.MessageId, m.Address, RandomNumberGenerator.GetBytes(32), DateTimeOffset.UtcNow, seal.Entry.Binding).Sign(m.Certificate, m.Key);
    });
    int used = 0;

    if (profile)
    {
        used = Profile(host.Service, signed, seal.Entry.MessageId, files, directory, new Uri(url, "v1/release"));
    }

    if (Array.IndexOf(args, "--release-loop") >= 0)
    {
        // For a profiler (perf record -p PID): releases in-process on one thread for --seconds, nothing else.
        Console.WriteLine($"release loop, pid {Environment.ProcessId}");
        await Task.Delay(TimeSpan.FromSeconds(3));
        var loop = Stopwatch.StartNew();
        TimeSpan loopCpu = Environment.CpuUsage.TotalTime;
        int looped = 0;
        while (loop.Elapsed < TimeSpan.FromSeconds(seconds) && used < signed.Length)
        {
            host.Service.ReleaseAsync(signed[used++], "127.0.0.1").GetAwaiter().GetResult();
            looped++;
        }

        Console.WriteLine($"{looped} releases, {(Environment.CpuUsage.TotalTime - loopCpu).TotalMilliseconds / looped:F3} ms CPU each");
        return 0;
    }

    // The load: the child process gets the JSON bodies and nothing else.
    string bodies = Path.Combine(dir, "requests.bin");
    using (var writer = new BinaryWriter(File.Create(bodies)))
    {
        for (int i = used; i < signed.Length; i++)
        {
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(new ReleaseHttpRequest { Request = signed[i] }, KeyReleaseJson.Default.ReleaseHttpRequest);
            writer.Write(json.Length);
            writer.Write(json);
        }
    }

    using var watching = new CancellationTokenSource();
    ServerPhase.WatchPauses(watching.Token);
    LoadResult load = await LoadGenerator.SpawnAsync(bodies, new Uri(url, "v1/release"), files.TlsCertificate, clients, TimeSpan.FromSeconds(WarmupSeconds), seconds, host.Service.Store);
    double throughput = load.Counted / load.Window;
    double serverMs = load.ServerCpuClosed.TotalMilliseconds / load.Counted;
    double loadMs = load.LoadCpuClosed.TotalMilliseconds / load.Counted;
    double loadShare = loadMs / (loadMs + serverMs);

    Console.WriteLine();
    Console.WriteLine($"releases/s at {clients} clients:        {throughput,10:F1}   ({load.Counted:N0} answered inside the {load.Window:F2} s window; {load.InFlightAtEnd} in flight at its end, drained in {load.Drain:F2} s; {load.Failures} refused{(load.Exhausted ? "; ran out of requests" : "")})");
    Console.WriteLine($"raw RSA-2048 bound (1 priv + 2 pub): {bound,10:F1}   /s on {Environment.ProcessorCount} cores ({rsaCpuMs:F3} ms CPU per release's RSA operations)");
    Console.WriteLine($"ratio:                               {throughput / bound,10:F2}   (goal >= 0.70)");
    Console.WriteLine($"CPU per release in the window:       key server {serverMs:F2} ms, load generator {loadMs:F2} ms ({loadShare:P0} of the two); both used {(load.ServerCpuClosed + load.LoadCpuClosed).TotalSeconds / load.Window:F2} of {Environment.ProcessorCount} cores");
    Console.WriteLine($"time in the JIT during the window:   key server {load.ServerJitInWindow.TotalMilliseconds:F0} ms, load generator {load.LoadJitInWindow.TotalMilliseconds:F0} ms (JitInfo: summed over threads, waits included); key server compiled {load.ServerMethodsJittedInWindow} methods");
    Console.WriteLine($"waiting for a core (other jobs):     key server {load.ServerRunQueueClosed.TotalMilliseconds / load.Counted:F2} ms per release, load generator {load.LoadRunQueueClosed.TotalMilliseconds / load.Counted:F2} ms (threads runnable but not running, summed)");
    Console.WriteLine($"ratio in CPU time:                   {rsaCpuMs / (serverMs + loadMs),10:F2}   (RSA CPU per release / CPU per release of both processes: the ratio on 2 cores of our own)");
    Console.WriteLine($"key server alone in CPU time:        {rsaCpuMs / serverMs,10:F2}   (RSA CPU per release / the key server's CPU per release)");
    Console.WriteLine($"at half load ({load.OpenRate:F0}/s, {load.OpenCount} requests): p50 {load.P50:F1} ms, p99 {load.P99:F1} ms, max {load.Max:F1} ms   (goal p99 <= 20 ms); key server {load.ServerCpuOpen.TotalMilliseconds / Math.Max(1, load.OpenCount):F2} ms CPU per release");
    Console.WriteLine($"key server, closed loop:             {load.ClosedPhase.Describe(load.Counted + load.InFlightAtEnd)}");
    Console.WriteLine($"key server, half load:               {load.OpenPhase.Describe(load.OpenCount)}");
    Console.WriteLine($"half load, tail:                     {load.OpenTail}");
    Console.WriteLine($"load average at the end: {LoadAverage()}");
    return load.Failures == 0 ? 0 : 1;
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Directory.Delete(dir, recursive: true);
}

static int Profile(KeyReleaseService service, byte[][] signed, byte[] messageId, KeyServerFiles files, DirectoryOptions directory, Uri releaseUri)
{
    // Single-thread cost of each step of one release, against the raw RSA operations it contains, so the cost the
    // key server adds beyond RSA is visible step by step (docs/key-release.md, Performance). Wall and CPU time: on a
    // shared machine the difference is time spent waiting (for a core, a lock, the disk).
    const int N = 150;
    int next = 0;
    using var rsa = new RsaReference();
    byte[] cek = RandomNumberGenerator.GetBytes(32);
    string id = Convert.ToHexStringLower(messageId);
    using ListKey releaseKey = KeyServerConfiguration.LoadReleaseKey(files.ReleaseCertificate, files.ReleaseKey);
    ReleaseRecord record = service.Store.GetMessage(id)!;
    var (_, signer) = ReleaseRequest.Verify(signed[0]);
    CmsRecipient member = CmsRecipient.FromCertificate(signer);
    using SqlDirectoryStore store = SqlDirectoryStore.Open(directory, TimeProvider.System);
    using var lists = new CachingListDirectory(new ListDirectory(store, new ListKeyStore(new KeysOptions { Directory = Path.GetDirectoryName(files.ReleaseKey)! }), TimeProvider.System),
        TimeSpan.FromMinutes(5), TimeProvider.System);
    var steps = new List<string>();

    string Time(string name, Action step)
    {
        step();
        TimeSpan cpu = Environment.CpuUsage.TotalTime;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            step();
        }

        double wall = Stopwatch.GetElapsedTime(start).TotalMilliseconds / N;
        double used = (Environment.CpuUsage.TotalTime - cpu).TotalMilliseconds / N;
        double kb = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1024.0 / N;
        steps.Add($"  {name,-58} {wall,8:F3} ms wall {used,8:F3} ms CPU {kb,6:F1} KB");
        return name;
    }

    Time("raw RSA (1 private + 2 public)", rsa.Run);
    Time("parse and verify the signed request (1 public)", () => ReleaseRequest.Verify(signed[0]).Signer.Dispose());
    var signers = new ReleaseSignerCache();
    signers.Remember(signer);
    Time("the same with the signer's certificate cached", () =>
    {
        if (!ReleaseRequest.Verify(signed[0], signers).Cached)
        {
            throw new InvalidOperationException("the quick path was not taken");
        }
    });
    Time("directory: expand the list (cached), find the member", () => GC.KeepAlive(lists.Expand(BenchList).Members.First(m => m.Address == "member0@bench.test")));
    Time("store read (post, revocation)", () => service.Store.GetForRelease(id, "member0@bench.test"));
    Time("unwrap the deposit (1 private)", () => CryptographicOperations.ZeroMemory(KeyReleaseServerKey.UnwrapDeposit(record.KeyRecipientInfo, releaseKey, record.KeyLength)));
    Time("wrap for the member (1 public)", () => KeyReleaseServerKey.WrapForMember(member, cek));
    Time("store commit (nonce, fetch, audit)", () => service.Store.CommitRelease(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), DateTimeOffset.UtcNow.AddMinutes(10),
        new ReleaseAuditRow(id, "member0@bench.test", DateTimeOffset.UtcNow, "127.0.0.1", "released", "released"), released: true));
    void ReleaseOne()
    {
        if (!service.ReleaseAsync(signed[next++], "127.0.0.1").GetAwaiter().GetResult().Released)
        {
            throw new InvalidOperationException("profile release refused");
        }
    }

    // One release per member first: the signer cache then holds every member, as in a key server that has run a while.
    for (int i = 0; i < 64; i++)
    {
        ReleaseOne();
    }

    Time("whole release in-process (KeyReleaseService.ReleaseAsync)", ReleaseOne);
    using var http = new HttpClient(LoadGenerator.Handler(X509CertificateLoader.LoadCertificateFromFile(files.TlsCertificate), 1));
    Time("over HTTPS, one client, both ends in this process", () =>
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(new ReleaseHttpRequest { Request = signed[next++] }, KeyReleaseJson.Default.ReleaseHttpRequest);
        using var content = new ByteArrayContent(json);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using HttpResponseMessage r = http.PostAsync(releaseUri, content).GetAwaiter().GetResult();
        if (!r.IsSuccessStatusCode)
        {
            throw new InvalidOperationException("profile release refused");
        }
    });

    Console.WriteLine($"one thread, {N} calls each:");
    steps.ForEach(Console.WriteLine);
    signer.Dispose();
    return next;
}

static string LoadAverage()
{
    try
    {
        return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
    }
    catch (IOException)
    {
        return "?";
    }
}

static (double PerSecond, double CpuMsPerRound) RawRsaBound(TimeSpan duration)
{
    // One release's RSA operations (RsaReference) on every core at once.
    using var rsa = new RsaReference();
    long rounds = 0;
    var end = DateTime.UtcNow + duration;
    TimeSpan cpu = Environment.CpuUsage.TotalTime;
    var sw = Stopwatch.StartNew();
    Parallel.For(0, Environment.ProcessorCount, _ =>
    {
        long mine = 0;
        while (DateTime.UtcNow < end)
        {
            rsa.Run();
            mine++;
        }

        Interlocked.Add(ref rounds, mine);
    });
    return (rounds / sw.Elapsed.TotalSeconds, (Environment.CpuUsage.TotalTime - cpu).TotalMilliseconds / rounds);
}

static byte[] OpensslFreePost(DirectoryOptions directory, string keys)
{
    // An ordinary client's post (EnvelopedData, AES-256-CBC, ktri PKCS#1 v1.5 to the list certificate).
    using SqlDirectoryStore store = SqlDirectoryStore.Open(directory, TimeProvider.System);
    X509Certificate2 listCert = new ListAdministration(store, new ListKeyStore(new KeysOptions { Directory = keys }), TimeProvider.System).GetCurrentCertificate(BenchList);
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


internal partial class Program
{
    private const string BenchList = "bench@lists.test";
}

/// <summary>The raw RSA-2048 operations of one release: one private (PKCS#1 v1.5 decryption, as the deposit's unwrap)
/// and two public (a signature verification, an encryption as the wrap for the member).</summary>
internal sealed class RsaReference : IDisposable
{
    private readonly RSA _key = RSA.Create(2048);
    private readonly RSA _public;
    private readonly byte[] _cek = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _wrapped;
    private readonly byte[] _hash;
    private readonly byte[] _signature;

    public RsaReference()
    {
        _wrapped = _key.Encrypt(_cek, RSAEncryptionPadding.Pkcs1);
        _hash = SHA256.HashData(_cek);
        _signature = _key.SignHash(_hash, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        _public = RSA.Create(_key.ExportParameters(false));
    }

    public void Run()
    {
        _key.Decrypt(_wrapped, RSAEncryptionPadding.Pkcs1);
        _public.VerifyHash(_hash, _signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        _public.Encrypt(_cek, RSAEncryptionPadding.Pkcs1);
    }

    public void Dispose()
    {
        _key.Dispose();
        _public.Dispose();
    }
}
