// Re-key benchmark. Run: dotnet run -c Release --project bench/cms/MilterSecureList.Cms.Bench
// Prints time per message, members/s, the ratio to the raw RSA-2048 public-key rate measured in the same run,
// the ratio against the naive "encrypt the content once per member" approach, and the memory used for a 50 MB message.
using System.Diagnostics;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Cms.Primitives;

if (args.Length == 2 && args[0] == "--memory-child")
{
    return MemoryChild(args[1]);
}

if (args.Length is 2 or 3 && args[0] == "--against")
{
    return AgainstBench.Run(args[1], args.Length == 3 ? args[2].Split(',').Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray() : null);
}

if (args.Length >= 1 && args[0] == "--profile")
{
    return ProfileBench.Run(args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1_000, args.Length > 3 && args[3] == "double");
}

if (args.Length >= 1 && args[0] == "--oracle")
{
    return OracleBench.Run(args.Length > 1 ? int.Parse(args[1]) : 2_000);
}

Console.WriteLine($"MilterSecureList CMS re-key benchmark  ({Environment.ProcessorCount} cores, .NET {Environment.Version})");
Console.WriteLine();

using ECDsa caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
X509Certificate2 ca = new CertificateRequest("CN=Bench CA", caKey, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));

RSA listRsa = RSA.Create(2048);
X509Certificate2 listCert = Issue("CN=list", listRsa.ExportSubjectPublicKeyInfo(), isEc: false, 1);
using var listKey = new ListKey(listCert, listRsa);

// Member certificates: 10,000 distinct certificates (distinct serials) over a pool of 64 RSA-2048 keys; key
// generation is not what we measure and every member still gets its own imported public-key object.
var sw = Stopwatch.StartNew();
RSA[] pool = Enumerable.Range(0, 64).Select(_ => RSA.Create(2048)).ToArray();
byte[][] poolSpki = pool.Select(k => k.ExportSubjectPublicKeyInfo()).ToArray();
bool ecOnly = args.Length == 1 && args[0] == "--ec";
// --quick: only what the list filter's path needs at 100 and 1,000 members (about 20 s instead of 1-2 minutes).
bool quick = args.Length == 1 && args[0] == "--quick";
var rsaMembers = new CmsRecipient[ecOnly ? 0 : quick ? 1_000 : 10_000];
Parallel.For(0, rsaMembers.Length, i =>
    rsaMembers[i] = CmsRecipient.FromCertificate(Issue($"CN=member{i}", poolSpki[i % pool.Length], isEc: false, 1000 + i)));
var ecMembers = new CmsRecipient[quick ? 0 : 1_000];
Parallel.For(0, ecMembers.Length, i =>
{
    using ECDiffieHellman k = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
    ecMembers[i] = CmsRecipient.FromCertificate(Issue($"CN=ec{i}", k.ExportSubjectPublicKeyInfo(), isEc: true, 100_000 + i));
});
Console.WriteLine($"setup: {rsaMembers.Length:N0} RSA-2048 + {ecMembers.Length:N0} P-256 member certificates issued and imported in {sw.Elapsed.TotalSeconds:F1} s");

byte[] message1Mb = BuildMessage(listCert, 1 << 20);
if (ecOnly)
{
    EcMembers();
    return 0;
}
Console.WriteLine($"message: 1 MiB content, AES-256-CBC, ContentInfo {message1Mb.Length:N0} bytes");
Console.WriteLine();

// Raw RSA-2048 public-key operation rate, same parallelism as the re-wrap (Parallel.For over all cores).
byte[] cek = RandomNumberGenerator.GetBytes(32);
RSA[] rawKeys = rsaMembers.Take(1000).Select(m => m.Certificate.GetRSAPublicKey()!).ToArray();
double rawRate = Measure(() =>
{
    Parallel.For(0, 10_000, i => rawKeys[i % rawKeys.Length].Encrypt(cek, RSAEncryptionPadding.Pkcs1));
    return 10_000;
}, minSeconds: 2);
Console.WriteLine($"raw RSA-2048 PKCS#1 v1.5 public-key ops (parallel): {rawRate:N0} ops/s");
byte[] listEk = listCert.GetRSAPublicKey()!.Encrypt(cek, RSAEncryptionPadding.Pkcs1);
(double privateRate, double oneRate, double oneMs) = Interleaved(() => { listRsa.Decrypt(listEk, RSAEncryptionPadding.Pkcs1); return 1; },
    () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], [rsaMembers[0]]).MembersWrapped);
double privateMs = 1000 / privateRate;
Console.WriteLine($"fixed cost per message: list-key RSA-2048 private op {privateMs:F2} ms; whole re-wrap for 1 member {oneMs:F2} ms");
Console.WriteLine();

// The VM's 2 cores are shared with other work, so each figure is the best of 5 short trials, and the raw RSA rates
// are re-measured in trials interleaved with the re-wrap trials (same conditions for both sides of the ratio). Two
// references: .NET's RSA.Encrypt (an EVP_PKEY_CTX made and freed per operation inside .NET), the reference of every
// earlier figure; and OpenSSL's RSA_public_encrypt on kept key objects, the engine's own primitive since the re-key
// engine calls it directly (docs/design.md, "Re-key: where the time goes"): the bound the engine can reach.
Func<int> rawOps = () =>
{
    Parallel.For(0, 2_000, i => rawKeys[i % rawKeys.Length].Encrypt(cek, RSAEncryptionPadding.Pkcs1));
    return 2_000;
};
RsaPublicKeyObject[] bareKeys = rsaMembers.Take(1000).Select(m => RsaPublicKeyObject.Import(m.PublicKey.Span, m.KeySizeBytes)).ToArray();
Func<int> bareOps = () =>
{
    Parallel.For(0, 2_000, () => new byte[256], (i, _, ciphertext) =>
    {
        bareKeys[i % bareKeys.Length].Encrypt(cek, ciphertext, oaep: false);
        return ciphertext;
    }, _ => { });
    return 2_000;
};
Console.WriteLine($"reference rates: RSA.Encrypt = .NET's RSA-2048 PKCS#1 v1.5 public-key op; bare = OpenSSL RSA_public_encrypt on kept key objects " +
    $"(the engine's primitive){(RsaPublicKeyObject.OpenSslAvailable ? "" : " NOT AVAILABLE: fallback")}; both in parallel on all cores");
Console.WriteLine("members  kind        time/message   members/s   RSA.Encrypt/s   ratio    bare ops/s   ratio");
foreach (int n in quick ? [100, 1_000] : new[] { 10, 100, 1_000, 10_000 })
{
    CmsRecipient[] members = rsaMembers.Take(n).ToArray();
    (double[] rates, double[] ms) = InterleavedN([rawOps, bareOps, () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], members).MembersWrapped]);
    Console.WriteLine($"{n,7:N0}  RSA-2048   {ms[2],10:F2} ms   {RatioColumns(rates)}");
}

byte[] listKek = RandomNumberGenerator.GetBytes(32);
byte[] doubleWrapped = DoubleWrap.Encrypt(new byte[1 << 20], "bench@lists.example", 1, listKek, listCert, useGcm: true);

Console.WriteLine();
// The list filter's path: inspect the message (is it for this list, is there a double-wrap entry?), then re-key
// the inspected envelope. The fixed cost is one parse of the 1 MiB ContentInfo.
(_, double inspectRate, double inspectMs) = Interleaved(() => 1, () => SessionKeyRewrapper.Inspect(message1Mb).Recipients.Count);
Console.WriteLine($"inspect alone (parse of the {message1Mb.Length:N0}-byte ContentInfo): {inspectMs * 1000:F1} us");
Console.WriteLine("members  path                          time/message   members/s   RSA.Encrypt/s   ratio    bare ops/s   ratio");
foreach (int n in new[] { 100, 1_000 })
{
    // The plain re-key and the filter's path in the same interleaved trials against the same references.
    CmsRecipient[] members = rsaMembers.Take(n).ToArray();
    (double[] rates, double[] ms) = InterleavedN([rawOps, bareOps,
        () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], members).MembersWrapped, () => FilterPath(members)]);
    Console.WriteLine($"{n,7:N0}  re-key                        {ms[2],8:F2} ms   {RatioColumns([rates[0], rates[1], rates[2]])}");
    Console.WriteLine($"{n,7:N0}  filter path: inspect + re-key {ms[3],8:F2} ms   {RatioColumns([rates[0], rates[1], rates[3]])}");
}

// The same path with the parse the filter used to repeat (inspect, then re-wrap the raw bytes, which parses them
// again), in 11 trials interleaved with the one-parse path (best of each, the order swapped every second trial).
Console.WriteLine("members  one parse vs two (inspect, then re-wrap the bytes again), interleaved");
foreach (int n in new[] { 100, 1_000 })
{
    CmsRecipient[] members = rsaMembers.Take(n).ToArray();
    (double doubleParseRate, double singleRate, double singleMs) = Interleaved(() =>
    {
        _ = SessionKeyRewrapper.Inspect(message1Mb).FindListKey([listKey]);
        return SessionKeyRewrapper.Rewrap(message1Mb, [listKey], members).MembersWrapped;
    }, () => FilterPath(members), trials: 11, swapOrder: true);
    Console.WriteLine($"{n,7:N0}  re-key       one parse {singleMs,8:F2} ms, two parses {n / doubleParseRate * 1000,8:F2} ms: time one/two {doubleParseRate / singleRate:F3}");
    (doubleParseRate, singleRate, singleMs) = Interleaved(() =>
    {
        _ = SessionKeyRewrapper.Inspect(doubleWrapped).HasDoubleWrap;
        return DoubleWrap.Rewrap(doubleWrapped, [listKey], members).MembersWrapped;
    }, () => DoubleWrapFilterPath(members), trials: 11, swapOrder: true);
    Console.WriteLine($"{n,7:N0}  double-wrap  one parse {singleMs,8:F2} ms, two parses {n / doubleParseRate * 1000,8:F2} ms: time one/two {doubleParseRate / singleRate:F3}");
}

// What the repeated parse costs in work, free of the machine's load: bytes allocated per message on each path.
{
    CmsRecipient[] members = rsaMembers.Take(100).ToArray();
    long one = AllocatedPerRun(() => FilterPath(members));
    long two = AllocatedPerRun(() =>
    {
        _ = SessionKeyRewrapper.Inspect(message1Mb).FindListKey([listKey]);
        return SessionKeyRewrapper.Rewrap(message1Mb, [listKey], members).MembersWrapped;
    });
    Console.WriteLine($"    100  re-key       allocated per message: one parse {one:N0} bytes, two parses {two:N0} bytes (the second parse: {two - one:N0})");
}

static long AllocatedPerRun(Func<int> run)
{
    run();
    long before = GC.GetTotalAllocatedBytes(precise: true);
    run();
    return GC.GetTotalAllocatedBytes(precise: true) - before;
}

int FilterPath(CmsRecipient[] members)
{
    CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(message1Mb);
    if (info.FindListKey([listKey]) is null)
    {
        throw new InvalidOperationException("bench message is not for the list");
    }

    return SessionKeyRewrapper.Rewrap(info, [listKey], members).MembersWrapped;
}

if (!quick)
{
    EcMembers();
}

// EC members: one shared ephemeral key per curve (default) against one per member, interleaved trials.
void EcMembers()
{
    var oneKeyEach = new CmsRewrapOptions { ShareKeyAgreement = false };
    (double eachRate, double sharedRate, double sharedMs) = Interleaved(
        () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], ecMembers, oneKeyEach).MembersWrapped,
        () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], ecMembers).MembersWrapped);
    // In-run reference: the bare P-256 ECDH derivations a shared key agreement cannot avoid, on all cores.
    using ECDiffieHellman eph = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
    ECParameters ephPrivate = eph.ExportParameters(true);
    ECDiffieHellmanPublicKey[] peers = ecMembers.Select(m => m.Certificate.GetECDiffieHellmanPublicKey()!.PublicKey).ToArray();
    (double deriveRate, _, _) = Interleaved(() =>
    {
        Parallel.For(0, peers.Length, () => ECDiffieHellman.Create(ephPrivate), (i, _, k) => { k.DeriveRawSecretAgreement(peers[i]); return k; }, k => k.Dispose());
        return peers.Length;
    }, () => 1);
    Console.WriteLine($"{ecMembers.Length,7:N0}  P-256 kari {sharedMs,10:F2} ms   {sharedRate,9:N0}   one shared ephemeral key; ratio to the raw parallel ECDH " +
        $"derive rate ({deriveRate:N0}/s, same run): {sharedRate / deriveRate:F2}");
    Console.WriteLine($"{ecMembers.Length,7:N0}  P-256 kari {1000 * ecMembers.Length / eachRate,10:F2} ms   {eachRate,9:N0}   one ephemeral key per member " +
        $"(the per-list switch); shared is {sharedRate / eachRate:F2}x faster");
}

Console.WriteLine();
// Double-wrap mode: the server swaps the outer layer of a 40-byte blob instead of a 32-byte CEK.
Console.WriteLine("members  double-wrap time/message   members/s   cost per member vs re-key mode");
foreach (int n in new[] { 100, 1_000 })
{
    CmsRecipient[] members = rsaMembers.Take(n).ToArray();
    (double[] rates, double[] ms) = InterleavedN([rawOps, bareOps, () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], members).MembersWrapped,
        () => DoubleWrap.Rewrap(doubleWrapped, [listKey], members).MembersWrapped, () => DoubleWrapFilterPath(members)]);
    Console.WriteLine($"{n,7:N0}  RSA-2048   {ms[3],10:F2} ms   {rates[3],9:N0}   {ms[3] / ms[2],6:F2}x (re-key {ms[2]:F2} ms)");
    Console.WriteLine($"{n,7:N0}  filter path (inspect + re-wrap) {ms[4],8:F2} ms   {RatioColumns([rates[0], rates[1], rates[4]])}");
}

int DoubleWrapFilterPath(CmsRecipient[] members)
{
    CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(doubleWrapped);
    if (!info.HasDoubleWrap)
    {
        throw new InvalidOperationException("bench message has no double-wrap entry");
    }

    return DoubleWrap.Rewrap(info, [listKey], members).MembersWrapped;
}

// A list larger than the process's key-object cache (docs/design.md, "Lists of 100,000 members"): each wrap imports
// the member's public key from its bytes first. The same 1,000 members with the cache switched off, against the raw
// RSA op rate (the rows above are the cached path every list within the cache's budget takes).
{
    long budget = CmsRecipient.KeyObjectCacheBytes;
    CmsRecipient.KeyObjectCacheBytes = 0;
    CmsRecipient[] members = rsaMembers.Take(1_000).ToArray();
    (double[] rates, double[] ms) = InterleavedN([rawOps, bareOps, () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], members).MembersWrapped]);
    CmsRecipient.KeyObjectCacheBytes = budget;
    Console.WriteLine($"  1,000  RSA-2048, key imported per wrap (cache off) {ms[2],8:F2} ms   {RatioColumns(rates)}");
}

if (quick)
{
    return 0;
}

Console.WriteLine();
// Naive approach of existing list servers: encrypt the content once per member (AES-256-CBC, fresh key and IV)
// plus one RSA key wrap each.
byte[] content = RandomNumberGenerator.GetBytes(1 << 20);
CmsRecipient[] hundred = rsaMembers.Take(100).ToArray();
RSA[] hundredKeys = hundred.Select(m => m.Certificate.GetRSAPublicKey()!).ToArray();
(double naiveRate, double oursRate, double oursMs) = Interleaved(() =>
{
    Parallel.For(0, 100, i =>
    {
        using Aes aes = Aes.Create();
        aes.KeySize = 256;
        aes.GenerateKey();
        byte[] ct = aes.EncryptCbc(content, RandomNumberGenerator.GetBytes(16));
        byte[] ek = hundredKeys[i].Encrypt(aes.Key, RSAEncryptionPadding.Pkcs1);
        GC.KeepAlive(ct);
        GC.KeepAlive(ek);
    });
    return 100;
}, () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], hundred).MembersWrapped);
double naiveMs = 100 / naiveRate * 1000;
Console.WriteLine($"100 members, 1 MiB: naive per-member encryption (AES-256-CBC + RSA wrap) {naiveMs:F1} ms, re-wrap {oursMs:F2} ms, re-wrap is {naiveMs / oursMs:F0}x faster");
// Second baseline: what a .NET list server would really do per member (a whole EnvelopedCms message each).
(double cmsRate, double oursRate2, double oursMs2) = Interleaved(() =>
{
    Parallel.For(0, 100, i =>
    {
        var env = new System.Security.Cryptography.Pkcs.EnvelopedCms(new System.Security.Cryptography.Pkcs.ContentInfo(content));
        env.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(hundred[i].Certificate));
        GC.KeepAlive(env.Encode());
    });
    return 100;
}, () => SessionKeyRewrapper.Rewrap(message1Mb, [listKey], hundred).MembersWrapped);
Console.WriteLine($"100 members, 1 MiB: naive EnvelopedCms message per member {100 / cmsRate * 1000:F1} ms, re-wrap {oursMs2:F2} ms, re-wrap is {100 / cmsRate * 1000 / oursMs2:F0}x faster");

Console.WriteLine();
// Padding-oracle timing class (docs/cms.md §8): list-key unwrap of a good ktri vs one whose PKCS#1 v1.5 padding is bad
// (the bad one takes the exception path and continues with a random key). Printed, not asserted.
{
    var goodEd = CmsEnvelopeInfo.Parse(message1Mb).Enveloped;
    byte[] goodEk = goodEd.RecipientInfos[0].KeyTrans!.Value.EncryptedKey.ToArray();
    byte[] badEk;
    while (true)
    {
        badEk = RandomNumberGenerator.GetBytes(256);
        badEk[0] &= 0x7F;
        try
        {
            listRsa.Decrypt(badEk, RSAEncryptionPadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            break;
        }
    }

    byte[] badMessage = (byte[])message1Mb.Clone();
    badEk.CopyTo(badMessage, badMessage.AsSpan().IndexOf(goodEk));
    var badEd = CmsEnvelopeInfo.Parse(badMessage).Enveloped;
    (double goodRate, double badRate, _) = Interleaved(
        () => { CryptographicOperations.ZeroMemory(ContentKeyRecovery.Recover(goodEd.RecipientInfos[0], listKey, 32)); return 1; },
        () => { CryptographicOperations.ZeroMemory(ContentKeyRecovery.Recover(badEd.RecipientInfos[0], listKey, 32)); return 1; });
    Console.WriteLine($"list-key unwrap, best of 5: good padding {1e6 / goodRate:F0} us, bad padding {1e6 / badRate:F0} us " +
        $"(difference {1e6 / badRate - 1e6 / goodRate:F0} us)");
}

Console.WriteLine();
// 50 MB message, measured in a child process so setup allocations do not count.
string file = Path.Combine(Path.GetTempPath(), $"msl-bench-{Guid.NewGuid():N}.p7m");
try
{
    File.WriteAllBytes(file, BuildMessage(listCert, 50 * 1000 * 1000));
    string certFile = file + ".crt";
    string keyFile = file + ".key";
    File.WriteAllText(certFile, listCert.ExportCertificatePem());
    File.WriteAllText(keyFile, listRsa.ExportPkcs8PrivateKeyPem());
    File.WriteAllText(file + ".member", rsaMembers[0].Certificate.ExportCertificatePem());
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
    {
        psi.ArgumentList.Add(typeof(ListKey).Assembly.Location.Replace("MilterSecureList.Cms.dll", "MilterSecureList.Cms.Bench.dll", StringComparison.Ordinal));
    }

    psi.ArgumentList.Add("--memory-child");
    psi.ArgumentList.Add(file);
    using Process child = Process.Start(psi)!;
    Console.Write(child.StandardOutput.ReadToEnd());
    child.WaitForExit();
}
finally
{
    foreach (string f in new[] { file, file + ".crt", file + ".key", file + ".member" })
    {
        File.Delete(f);
    }
}

return 0;

X509Certificate2 Issue(string subject, byte[] spki, bool isEc, long serial)
{
    var pk = PublicKey.CreateFromSubjectPublicKeyInfo(spki, out _);
    var req = new CertificateRequest(new X500DistinguishedName(subject), pk, HashAlgorithmName.SHA256);
    req.CertificateExtensions.Add(new X509KeyUsageExtension(isEc ? X509KeyUsageFlags.KeyAgreement : X509KeyUsageFlags.KeyEncipherment, true));
    byte[] serialBytes = BitConverter.GetBytes(serial);
    Array.Reverse(serialBytes);
    using X509Certificate2 c = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), serialBytes.SkipWhile(b => b == 0).ToArray());
    return X509CertificateLoader.LoadCertificate(c.RawData);
}

// A sender's message: AES-256-CBC content, list key by RSA PKCS#1 v1.5, DER. Written directly (EnvelopedCms
// would hold several copies of a 50 MB body).
static byte[] BuildMessage(X509Certificate2 list, int size)
{
    byte[] key = RandomNumberGenerator.GetBytes(32);
    byte[] iv = RandomNumberGenerator.GetBytes(16);
    byte[] ct;
    using (Aes aes = Aes.Create())
    {
        aes.Key = key;
        byte[] plain = new byte[size];
        RandomNumberGenerator.Fill(plain.AsSpan(0, Math.Min(size, 4096)));
        ct = aes.EncryptCbc(plain, iv);
    }

    using RSA pub = list.GetRSAPublicKey()!;
    return OracleBench.Envelope(list, pub.Encrypt(key, RSAEncryptionPadding.Pkcs1), iv, ct);
}

static double MeasureCore(Func<int> run, double minSeconds, out double msPerRun)
{
    run(); // warm-up
    int runs = 0;
    long items = 0;
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed.TotalSeconds < minSeconds || runs < 3)
    {
        items += run();
        runs++;
    }

    msPerRun = sw.Elapsed.TotalMilliseconds / runs;
    return items / sw.Elapsed.TotalSeconds;
}

static double Measure(Func<int> run, double minSeconds) => MeasureCore(run, minSeconds, out _);

// Best of TRIALS rounds, each running every one of RUNS for 0.3 s, the order rotated every round: (best items/s of each,
// ms per run of each at its best).
static (double[] Rates, double[] Ms) InterleavedN(Func<int>[] runs, int trials = 5)
{
    double[] best = new double[runs.Length];
    double[] ms = new double[runs.Length];
    for (int t = 0; t < trials; t++)
    {
        for (int k = 0; k < runs.Length; k++)
        {
            int r = (k + t) % runs.Length;
            double rate = MeasureCore(runs[r], 0.3, out double m);
            if (rate > best[r])
            {
                best[r] = rate;
                ms[r] = m;
            }
        }
    }

    return (best, ms);
}

// members/s, then each reference rate and the ratio to it: RATES = [RSA.Encrypt ops/s, bare ops/s, members/s].
static string RatioColumns(double[] rates) =>
    $"{rates[2],9:N0}   {rates[0],13:N0}   {rates[2] / rates[0],5:F2}   {rates[1],11:N0}   {rates[2] / rates[1],5:F2}";

// Best of 5 (or trials) alternating trials of a and b: (best items/s of a, best items/s of b, ms per run of b at its best).
// With swapOrder, every second trial runs b first, so neither side always runs after the other's garbage.
static (double A, double B, double MsB) Interleaved(Func<int> a, Func<int> b, int trials = 5, bool swapOrder = false)
{
    double bestA = 0, bestB = 0, msB = 0;
    for (int t = 0; t < trials; t++)
    {
        bool bFirst = swapOrder && t % 2 == 1;
        double rb = 0, ms = 0;
        if (bFirst)
        {
            rb = MeasureCore(b, 0.3, out ms);
        }

        bestA = Math.Max(bestA, MeasureCore(a, 0.3, out _));
        if (!bFirst)
        {
            rb = MeasureCore(b, 0.3, out ms);
        }

        if (rb > bestB)
        {
            bestB = rb;
            msB = ms;
        }
    }

    return (bestA, bestB, msB);
}

static int MemoryChild(string file)
{
    using X509Certificate2 cert = X509Certificate2.CreateFromPemFile(file + ".crt", file + ".key");
    using var key = new ListKey(X509CertificateLoader.LoadCertificate(cert.RawData), cert.GetRSAPrivateKey()!);
    CmsRecipient member = CmsRecipient.FromCertificate(X509CertificateLoader.LoadCertificateFromFile(file + ".member"));
    byte[] input = File.ReadAllBytes(file);
    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();
    long rssBefore = ReadStatusKb("VmRSS");
    ResetPeakRss();
    long allocBefore = GC.GetTotalAllocatedBytes(precise: true);
    var sw = Stopwatch.StartNew();
    RewrapResult r = SessionKeyRewrapper.Rewrap(input, [key], [member]);
    sw.Stop();
    long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocBefore;
    long peak = ReadStatusKb("VmHWM");
    double mb = input.Length / 1e6;
    Console.WriteLine($"50 MB message ({input.Length:N0} bytes): re-wrap {sw.Elapsed.TotalMilliseconds:F0} ms, output {r.ContentInfo.Length:N0} bytes");
    Console.WriteLine($"  GC allocated during re-wrap: {allocated / 1e6:F1} MB = {allocated / (double)input.Length:F2}x the message");
    Console.WriteLine($"  process RSS before (input loaded): {rssBefore / 1e3:F1} MB; peak RSS during re-wrap: {peak / 1e3:F1} MB;" +
        $" peak - before = {(peak - rssBefore) / 1e3:F1} MB = {(peak - rssBefore) / 1e3 / mb:F2}x the message");
    Console.WriteLine($"  input + output held at peak = {(input.Length + r.ContentInfo.Length) / (double)input.Length:F2}x the message");
    return 0;
}

static long ReadStatusKb(string field)
{
    foreach (string line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith(field + ":", StringComparison.Ordinal))
        {
            return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    return 0;
}

// Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) so the peak covers only the re-wrap.
static void ResetPeakRss()
{
    try
    {
        File.WriteAllText("/proc/self/clear_refs", "5");
    }
    catch (IOException)
    {
    }
    catch (UnauthorizedAccessException)
    {
    }
}
