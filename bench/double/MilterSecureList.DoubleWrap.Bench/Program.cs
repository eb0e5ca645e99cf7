// Double-wrap vs re-key benchmark. Run:
//   dotnet run -c Release --project bench/double/MilterSecureList.DoubleWrap.Bench [-- --quick]
// Same shapes as bench/cms: a 1 MiB post, 10 / 100 / 1,000 RSA-2048 members (PKCS#1 v1.5 ktri each). For each size
// SessionKeyRewrapper.Rewrap (re-key mode: the server unwraps the CEK) and DoubleWrap.Rewrap (double-wrap: the server
// unwraps only the 40-byte inner blob) are measured in interleaved trials in the same process, best of 9 each, the
// order swapped every second trial (the 2 cores are shared). Prints time per message, cost per member, marginal cost
// per member, the ratio of the bests and the median of the trials' paired ratios; target: double-wrap at most 1.2x
// re-key per member (stricter goal 1.1x).
using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using CmsRecipientInfo = MilterSecureList.Cms.CmsRecipient;

bool quick = args.Contains("--quick");
Console.WriteLine($"MilterSecureList double-wrap vs re-key benchmark ({Environment.ProcessorCount} cores, .NET {Environment.Version})");

using ECDsa caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
using X509Certificate2 ca = new CertificateRequest("CN=Bench CA", caKey, HashAlgorithmName.SHA256)
    .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));

// The server's key pair: in re-key mode the list certificate, in double-wrap mode the server's certificate.
RSA serverRsa = RSA.Create(2048);
X509Certificate2 serverCert = Issue("CN=server", serverRsa.ExportSubjectPublicKeyInfo(), 1);
using var serverKey = new ListKey(serverCert, serverRsa);

// 1,000 distinct member certificates over a pool of 32 RSA-2048 keys (key generation is not what we measure).
var sw = Stopwatch.StartNew();
byte[][] pool = Enumerable.Range(0, 32).Select(_ => { using RSA k = RSA.Create(2048); return k.ExportSubjectPublicKeyInfo(); }).ToArray();
var members = new CmsRecipientInfo[1_000];
Parallel.For(0, members.Length, i => members[i] = CmsRecipientInfo.FromCertificate(Issue($"CN=member{i}", pool[i % pool.Length], 1000 + i)));
Console.WriteLine($"setup: {members.Length:N0} RSA-2048 member certificates in {sw.Elapsed.TotalSeconds:F1} s");

byte[] content = RandomNumberGenerator.GetBytes(1 << 20);
// Re-key mode input: what an ordinary client sends (EnvelopedData, AES-256-CBC, ktri PKCS#1 v1.5 to the list).
var envelope = new EnvelopedCms(new System.Security.Cryptography.Pkcs.ContentInfo(content), new AlgorithmIdentifier(new Oid("2.16.840.1.101.3.4.1.42")));
envelope.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(SubjectIdentifierType.IssuerAndSerialNumber, serverCert));
byte[] rekeyPost = envelope.Encode();
// Double-wrap input: what securelist encrypt sends (AuthEnvelopedData AES-256-GCM, ori -> ktri OAEP-SHA256 to the server).
byte[] listKey = RandomNumberGenerator.GetBytes(32);
byte[] doublePost = DoubleWrap.Encrypt(content, "bench@lists.example", 1, listKey, serverCert, useGcm: true);
CryptographicOperations.ZeroMemory(listKey);
Console.WriteLine($"post: 1 MiB content; re-key ContentInfo {rekeyPost.Length:N0} bytes, double-wrap {doublePost.Length:N0} bytes");
Console.WriteLine();

Console.WriteLine("members   re-key/message   double/message   re-key/member   double/member   ratio (double / re-key per member, best of each; paired trials: median (quartiles))");
var results = new List<(int N, double Rekey, double Double)>();
foreach (int n in quick ? new[] { 10, 100 } : new[] { 10, 100, 1_000 })
{
    CmsRecipientInfo[] m = members.Take(n).ToArray();
    (double rekeyMs, double doubleMs, double[] paired, double[] cpu) = Interleaved(
        () => SessionKeyRewrapper.Rewrap(rekeyPost, [serverKey], m).MembersWrapped,
        () => DoubleWrap.Rewrap(doublePost, [serverKey], m).MembersWrapped,
        trials: quick ? 3 : 9);
    results.Add((n, rekeyMs, doubleMs));
    Console.WriteLine($"{n,7:N0}   {rekeyMs,11:F2} ms   {doubleMs,11:F2} ms   {rekeyMs / n * 1000,9:F1} µs   {doubleMs / n * 1000,9:F1} µs   {doubleMs / rekeyMs,6:F2}x" +
        $"   wall {paired[paired.Length / 2],5:F2}x ({paired[paired.Length / 4]:F2}-{paired[paired.Length * 3 / 4]:F2}), " +
        $"CPU {cpu[cpu.Length / 2],5:F2}x ({cpu[cpu.Length / 4]:F2}-{cpu[cpu.Length * 3 / 4]:F2})");
}

if (results.Count >= 2)
{
    // Marginal cost per member: the slope between the smallest and largest list, free of the fixed per-message cost
    // (the server's private-key operation and the copy of the 1 MiB content).
    (int n0, double r0, double d0) = results[0];
    (int n1, double r1, double d1) = results[^1];
    double rekeySlope = (r1 - r0) / (n1 - n0) * 1000;
    double doubleSlope = (d1 - d0) / (n1 - n0) * 1000;
    Console.WriteLine();
    Console.WriteLine($"marginal cost per member ({n0}..{n1}): re-key {rekeySlope:F1} µs, double-wrap {doubleSlope:F1} µs, ratio {doubleSlope / rekeySlope:F2}x");
    double worst = results.Max(r => r.Double / r.Rekey);
    Console.WriteLine($"target double-wrap <= 1.20x re-key per member: worst per-member ratio {worst:F2}x -> {(worst <= 1.2 ? "MET" : "NOT MET")}; " +
        $"stricter goal <= 1.10x: {(worst <= 1.1 ? "MET" : "NOT MET")}");
}

return 0;

X509Certificate2 Issue(string subject, byte[] spki, long serial)
{
    var request = new CertificateRequest(new X500DistinguishedName(subject), PublicKey.CreateFromSubjectPublicKeyInfo(spki, out _), HashAlgorithmName.SHA256);
    request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment, critical: true));
    byte[] serialBytes = BitConverter.GetBytes(serial);
    Array.Reverse(serialBytes);
    using X509Certificate2 cert = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
        DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), serialBytes);
    return X509CertificateLoader.LoadCertificate(cert.RawData);
}

// Best of TRIALS alternating trials, the order swapped every second trial: ms per message of a and of b at their best,
// and the sorted ratios b/a of each trial's pair (neighbours in time see the same load on a shared machine).
static (double A, double B, double[] Paired, double[] PairedCpu) Interleaved(Func<int> a, Func<int> b, int trials)
{
    double bestA = double.MaxValue, bestB = double.MaxValue;
    double[] paired = new double[trials];
    double[] pairedCpu = new double[trials];
    for (int t = 0; t < trials; t++)
    {
        bool bFirst = t % 2 == 1;
        (double msB, double cpuB) = bFirst ? MsPerRun(b) : (0, 0);
        (double msA, double cpuA) = MsPerRun(a);
        (msB, cpuB) = bFirst ? (msB, cpuB) : MsPerRun(b);
        bestA = Math.Min(bestA, msA);
        bestB = Math.Min(bestB, msB);
        paired[t] = msB / msA;
        pairedCpu[t] = cpuB / cpuA;
    }

    Array.Sort(paired);
    Array.Sort(pairedCpu);
    return (bestA, bestB, paired, pairedCpu);
}

// Wall time and CPU time (all threads of the process) per message, in ms.
static (double Wall, double Cpu) MsPerRun(Func<int> run)
{
    run(); // warm-up
    int runs = 0;
    TimeSpan cpu0 = Environment.CpuUsage.TotalTime;
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed.TotalSeconds < 0.3 || runs < 3)
    {
        run();
        runs++;
    }

    return (sw.Elapsed.TotalMilliseconds / runs, (Environment.CpuUsage.TotalTime - cpu0).TotalMilliseconds / runs);
}
