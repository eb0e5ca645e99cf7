using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Cms.Primitives;

/// <summary><c>--profile [seconds] [members] [mode]</c>: re-wraps (re-key, or double-wrap with mode <c>double</c>) of a 1 MiB
/// post to N RSA-2048 members in a loop for a profiler (<c>perf record</c> with <c>DOTNET_PerfMapEnabled=1</c>), then
/// prints the CPU time per message and per member beside the CPU time of one <c>RSA.Encrypt</c> and of one bare
/// <c>RSA_public_encrypt</c> (the in-run references, every fourth round).</summary>
internal static class ProfileBench
{
    public static int Run(double seconds, int n, bool doubleWrap)
    {
        using RSA listRsa = RSA.Create(2048);
        using X509Certificate2 listCert = BenchWorld.ListCertificate(listRsa);
        using var listKey = new ListKey(X509CertificateLoader.LoadCertificate(listCert.RawData), RSA.Create(listRsa.ExportParameters(true)));
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] message = doubleWrap
            ? DoubleWrap.Encrypt(new byte[1 << 20], "bench@lists.example", 1, RandomNumberGenerator.GetBytes(32), listCert)
            : BenchWorld.RekeyPost(listCert, listRsa);
        CmsRecipient[] members = BenchWorld.MemberCertificates(n).Select(c => CmsRecipient.FromDer(c.RawData)).ToArray();
        RSA[] raw = members.Select(m => m.Certificate.GetRSAPublicKey()!).ToArray();
        RsaPublicKeyObject[] bare = members.Select(m => RsaPublicKeyObject.Import(m.PublicKey.Span, m.KeySizeBytes)).ToArray();

        Func<int> rewrap = doubleWrap
            ? () => DoubleWrap.Rewrap(message, [listKey], members).MembersWrapped
            : () => SessionKeyRewrapper.Rewrap(message, [listKey], members).MembersWrapped;
        Func<int> rawOps = () =>
        {
            Parallel.For(0, n, i => raw[i].Encrypt(cek, RSAEncryptionPadding.Pkcs1));
            return n;
        };
        Func<int> bareOps = () =>
        {
            Parallel.For(0, n, () => new byte[256], (i, _, ciphertext) =>
            {
                bare[i].Encrypt(cek, ciphertext, oaep: false);
                return ciphertext;
            }, _ => { });
            return n;
        };
        // Warm-up of 3 s: tiered compilation rejits the hot methods on a background thread during the first seconds,
        // CPU time that would otherwise be counted against the first messages.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < 3)
        {
            rewrap();
            rawOps();
            bareOps();
        }

        Console.WriteLine($"profiling {(doubleWrap ? "double-wrap" : "re-key")} of a 1 MiB post to {n:N0} members for {seconds} s (pid {Environment.ProcessId})");
        double rewrapCpu = 0, rawCpu = 0, rewrapWall = 0, rawWall = 0, bareCpu = 0;
        int messages = 0, rawRuns = 0;
        var total = Stopwatch.StartNew();
        while (total.Elapsed.TotalSeconds < seconds)
        {
            (double c, double w) = Cpu(rewrap);
            rewrapCpu += c;
            rewrapWall += w;
            messages++;
            if (messages % 4 == 0)
            {
                (c, w) = Cpu(rawOps);
                rawCpu += c;
                rawWall += w;
                rawRuns++;
                (c, _) = Cpu(bareOps);
                bareCpu += c;
            }
        }

        double perMember = rewrapCpu / messages / n * 1000;
        double perOp = rawRuns == 0 ? double.NaN : rawCpu / rawRuns / n * 1000;
        Console.WriteLine($"{messages} messages: CPU {rewrapCpu / messages:F2} ms per message, {perMember:F2} us per member; " +
            $"wall {rewrapWall / messages:F2} ms per message");
        Console.WriteLine($"raw RSA.Encrypt (parallel): CPU {perOp:F2} us per op; wall {rawWall / Math.Max(1, rawRuns):F2} ms per {n} ops; " +
            $"CPU per member / per raw op {perMember / perOp:F3}");
        double perBare = rawRuns == 0 ? double.NaN : bareCpu / rawRuns / n * 1000;
        Console.WriteLine($"bare RSA_public_encrypt (parallel, the engine's primitive): CPU {perBare:F2} us per op; CPU per member / per bare op {perMember / perBare:F3}");
        return 0;
    }

    private static (double CpuMs, double WallMs) Cpu(Func<int> run)
    {
        TimeSpan cpu0 = Environment.CpuUsage.TotalTime;
        long t0 = Stopwatch.GetTimestamp();
        run();
        return ((Environment.CpuUsage.TotalTime - cpu0).TotalMilliseconds, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    }
}
