using System.Diagnostics;
using System.Reflection;
using System.Runtime.Loader;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

/// <summary><c>--against DIR</c>: this build's re-key and double-wrap engines against another build's (DIR holds its
/// MilterSecureList.Cms.dll, e.g. the bench's bin folder of an older commit), both loaded side by side into their own
/// load contexts and measured in paired, interleaved trials in one process. It reports CPU time per message (all
/// threads of the process), which other work sharing the cores disturbs much less than wall time.</summary>
internal static class AgainstBench
{
    public static int Run(string otherDir, int[]? counts = null)
    {
        using RSA listRsa = RSA.Create(2048);
        using X509Certificate2 listCert = BenchWorld.ListCertificate(listRsa);
        byte[] message = BenchWorld.RekeyPost(listCert, listRsa);
        byte[] doubleWrapped = MilterSecureList.Cms.DoubleWrap.Encrypt(new byte[1 << 20], "bench@lists.example", 1,
            RandomNumberGenerator.GetBytes(32), listCert);
        X509Certificate2[] members = BenchWorld.MemberCertificates(1_000);

        counts ??= [100, 1_000];
        var other = new Engine("other", otherDir, listCert, listRsa, members, counts);
        var mine = new Engine("this", AppContext.BaseDirectory, listCert, listRsa, members, counts);
        Console.WriteLine($"re-key and double-wrap of a 1 MiB message: this build against {otherDir}");
        foreach ((string mode, int n) in new[] { "re-key", "double-wrap" }.SelectMany(m => counts.Select(n => (m, n))))
        {
            bool dw = mode == "double-wrap";
            byte[] input = dw ? doubleWrapped : message;
            double bestOther = double.MaxValue, bestMine = double.MaxValue;
            var ratios = new List<double>();
            var wallRatios = new List<double>();
            for (int t = 0; t < 21; t++)
            {
                // Paired trials, the order swapped every second one.
                bool mineFirst = t % 2 == 1;
                (double a, double aWall) = mineFirst ? CpuPerRun(() => mine.Rewrap(dw, input, n)) : (0, 0);
                (double b, double bWall) = CpuPerRun(() => other.Rewrap(dw, input, n));
                (a, aWall) = mineFirst ? (a, aWall) : CpuPerRun(() => mine.Rewrap(dw, input, n));
                bestOther = Math.Min(bestOther, b);
                bestMine = Math.Min(bestMine, a);
                ratios.Add(a / b);
                wallRatios.Add(aWall / bWall);
            }

            ratios.Sort();
            wallRatios.Sort();
            Console.WriteLine($"{mode,-11} {n,6:N0} members: CPU per message, best: other {bestOther:F2} ms, this {bestMine:F2} ms; this/other: " +
                $"median of 21 paired trials {ratios[10]:F3} (quartiles {ratios[5]:F3}-{ratios[15]:F3}), best-of {bestMine / bestOther:F3}; " +
                $"wall time this/other: median {wallRatios[10]:F3} (quartiles {wallRatios[5]:F3}-{wallRatios[15]:F3})");
        }

        return 0;
    }

    // CPU time (all threads, getrusage) and wall time per run, in ms.
    private static (double Cpu, double Wall) CpuPerRun(Func<int> run)
    {
        run();
        int runs = 0;
        var sw = Stopwatch.StartNew();
        TimeSpan cpu0 = Environment.CpuUsage.TotalTime;
        while (sw.Elapsed.TotalSeconds < 0.3 || runs < 3)
        {
            run();
            runs++;
        }

        return ((Environment.CpuUsage.TotalTime - cpu0).TotalMilliseconds / runs, sw.Elapsed.TotalMilliseconds / runs);
    }

    /// <summary>One build's engine, reached through reflection (its types are not this build's types).</summary>
    private sealed class Engine
    {
        private readonly MethodInfo _rewrap;
        private readonly MethodInfo _doubleRewrap;
        private readonly PropertyInfo _wrapped;
        private readonly Array _keys;
        private readonly Dictionary<int, Array> _members = [];

        public Engine(string name, string dir, X509Certificate2 listCert, RSA listRsa, X509Certificate2[] memberCerts, int[] counts)
        {
            var context = new AssemblyLoadContext(name);
            context.Resolving += (ctx, an) =>
                File.Exists(Path.Combine(dir, an.Name + ".dll")) ? ctx.LoadFromAssemblyPath(Path.Combine(dir, an.Name + ".dll")) : null;
            Assembly cms = context.LoadFromAssemblyPath(Path.GetFullPath(Path.Combine(dir, "MilterSecureList.Cms.dll")));
            Type listKey = cms.GetType("MilterSecureList.Cms.ListKey", throwOnError: true)!;
            Type recipient = cms.GetType("MilterSecureList.Cms.CmsRecipient", throwOnError: true)!;
            _rewrap = cms.GetType("MilterSecureList.Cms.SessionKeyRewrapper", throwOnError: true)!.GetMethods()
                .Single(m => m.Name == "Rewrap" && m.GetParameters()[0].ParameterType == typeof(ReadOnlyMemory<byte>));
            _doubleRewrap = cms.GetType("MilterSecureList.Cms.DoubleWrap", throwOnError: true)!.GetMethods()
                .Single(m => m.Name == "Rewrap" && m.GetParameters()[0].ParameterType == typeof(ReadOnlyMemory<byte>));
            _wrapped = cms.GetType("MilterSecureList.Cms.RewrapResult", throwOnError: true)!.GetProperty("MembersWrapped")!;
            _keys = Array.CreateInstance(listKey, 1);
            _keys.SetValue(Activator.CreateInstance(listKey, listCert, (AsymmetricAlgorithm)listRsa), 0);
            MethodInfo from = recipient.GetMethod("FromCertificate")!;
            foreach (int n in counts)
            {
                Array m = Array.CreateInstance(recipient, n);
                for (int i = 0; i < n; i++)
                {
                    m.SetValue(from.Invoke(null, [memberCerts[i], false]), i);
                }

                _members[n] = m;
            }
        }

        public int Rewrap(bool doubleWrap, byte[] message, int n) =>
            (int)_wrapped.GetValue((doubleWrap ? _doubleRewrap : _rewrap).Invoke(null, [new ReadOnlyMemory<byte>(message), _keys, _members[n], null]))!;
    }
}
