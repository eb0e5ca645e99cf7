using System.Diagnostics;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;

/// <summary>
/// <c>--oracle [samples]</c>: is the list-key unwrap a PKCS#1 v1.5 timing oracle? Times whole re-wraps (the engine's
/// path at end of message: parse, list-key unwrap, one member wrap, assemble) of a 16 KiB post whose list
/// RecipientInfo holds either a well-padded key that is not the content's ("good padding, wrong key") or a ciphertext
/// whose padding is broken ("bad padding"). The classes are interleaved in random order, 2,000 samples each by
/// default, each sample from a pool of distinct ciphertexts. Prints both distributions and Welch's z of the means;
/// a third class, another set of good-padding ciphertexts, is the control. The same test on the previous method
/// (.NET RSA.Decrypt, which throws on bad padding under OpenSSL 3.0, and a catch) shows that the measurement can see
/// an oracle when there is one.
/// </summary>
internal static class OracleBench
{
    public static int Run(int samples)
    {
        Console.WriteLine($"PKCS#1 v1.5 timing oracle benchmark  ({Environment.ProcessorCount} cores, .NET {Environment.Version}), {samples:N0} samples per class");
        using RSA listRsa = RSA.Create(2048);
        var req = new CertificateRequest("CN=oracle list", listRsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment, true));
        X509Certificate2 listCert = X509CertificateLoader.LoadCertificate(req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1)).RawData);
        using RSA memberRsa = RSA.Create(2048);
        var memberReq = new CertificateRequest("CN=member", memberRsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        CmsRecipient member = CmsRecipient.FromCertificate(X509CertificateLoader.LoadCertificate(
            memberReq.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1)).RawData));
        using var listKey = new ListKey(listCert, listRsa, ownsKey: false);
        using RSA pub = listCert.GetRSAPublicKey()!;

        const int Pool = 64;
        byte[][] goodEks = Enumerable.Range(0, Pool).Select(_ => pub.Encrypt(RandomNumberGenerator.GetBytes(32), RSAEncryptionPadding.Pkcs1)).ToArray();
        byte[][] controlEks = Enumerable.Range(0, Pool).Select(_ => pub.Encrypt(RandomNumberGenerator.GetBytes(32), RSAEncryptionPadding.Pkcs1)).ToArray();
        byte[][] badEks = Enumerable.Range(0, Pool).Select(_ => NonConforming(listRsa)).ToArray();
        byte[][][] messages = [goodEks.Select(Message).ToArray(), badEks.Select(Message).ToArray(), controlEks.Select(Message).ToArray()];
        string[] names = ["good padding, wrong key", "bad padding", "control: good padding"];

        Console.WriteLine();
        Console.WriteLine("engine (RSADP in OpenSSL + constant-time implicit rejection), whole re-wrap per sample:");
        double[][] engine = Sample(samples, messages.Length, (cls, i) =>
            SessionKeyRewrapper.Rewrap(messages[cls][i % Pool], [listKey], [member]).MembersWrapped);
        Report(names, engine);

        Console.WriteLine();
        Console.WriteLine("previous method for comparison (RSA.Decrypt with PKCS#1 padding and a catch), unwrap only:");
        byte[][][] eks = [goodEks, badEks, controlEks];
        double[][] legacy = Sample(samples, eks.Length, (cls, i) =>
        {
            try
            {
                return listRsa.Decrypt(eks[cls][i % Pool], RSAEncryptionPadding.Pkcs1).Length;
            }
            catch (CryptographicException)
            {
                return -1;
            }
        });
        Report(names, legacy);
        return 0;

        byte[] Message(byte[] ek) => BuildMessage(listCert, ek, 16 * 1024);
    }

    /// <summary>Runs <paramref name="samples"/> timed calls per class, all classes shuffled together, after a warm-up.</summary>
    private static double[][] Sample(int samples, int classes, Func<int, int, int> run)
    {
        int[] order = Enumerable.Range(0, samples * classes).Select(i => i % classes).ToArray();
        Random.Shared.Shuffle(order);
        for (int i = 0; i < 300; i++)
        {
            run(i % classes, i);
        }

        var times = Enumerable.Range(0, classes).Select(_ => new List<double>(samples)).ToArray();
        int[] next = new int[classes];
        foreach (int cls in order)
        {
            long t0 = Stopwatch.GetTimestamp();
            run(cls, next[cls]++);
            times[cls].Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
        }

        return times.Select(t => t.ToArray()).ToArray();
    }

    private static void Report(string[] names, double[][] times)
    {
        Console.WriteLine($"  {"class",-26} {"n",6} {"mean",9} {"sd",8} {"p1",8} {"p10",8} {"p25",8} {"p50",8} {"p75",8} {"p90",8} {"p99",8}  (us)");
        for (int c = 0; c < times.Length; c++)
        {
            double[] s = times[c].Order().ToArray();
            Console.WriteLine($"  {names[c],-26} {s.Length,6} {s.Average(),9:F1} {Sd(s),8:F1} {P(s, 1),8:F1} {P(s, 10),8:F1} {P(s, 25),8:F1} " +
                $"{P(s, 50),8:F1} {P(s, 75),8:F1} {P(s, 90),8:F1} {P(s, 99),8:F1}");
        }

        Console.WriteLine("  Welch z of the means (all samples; 5% trimmed each end) and Mann-Whitney z of the ranks (robust to the");
        Console.WriteLine("  scheduler outliers of a shared machine); |z| < 3: no difference at 2,000 samples per class");
        Console.WriteLine($"  bad padding vs good padding:  Welch z = {Z(times[1], times[0]),6:F2}  trimmed {Z(Trim(times[1]), Trim(times[0])),6:F2}  Mann-Whitney z = {RankZ(times[1], times[0]),6:F2}");
        Console.WriteLine($"  control vs good padding:      Welch z = {Z(times[2], times[0]),6:F2}  trimmed {Z(Trim(times[2]), Trim(times[0])),6:F2}  Mann-Whitney z = {RankZ(times[2], times[0]),6:F2}");
        Histogram(names, times);
    }

    /// <summary>Counts per 10 us bucket around the medians, side by side for the first two classes.</summary>
    private static void Histogram(string[] names, double[][] times)
    {
        double[] all = times[0].Concat(times[1]).Order().ToArray();
        double lo = Math.Floor(P(all, 2) / 10) * 10;
        double hi = Math.Ceiling(P(all, 98) / 10) * 10;
        double width = Math.Max(10, Math.Ceiling((hi - lo) / 12 / 10) * 10);
        Console.WriteLine($"  histogram (us)      {names[0],-24} {names[1]}");
        for (double b = lo; b < hi; b += width)
        {
            int a = times[0].Count(t => t >= b && t < b + width);
            int c = times[1].Count(t => t >= b && t < b + width);
            Console.WriteLine($"  [{b,7:F0},{b + width,7:F0})  {a,6} {new string('#', a * 40 / times[0].Length),-40} {c,6} {new string('#', c * 40 / times[1].Length)}");
        }
    }

    private static double Z(double[] a, double[] b) =>
        (a.Average() - b.Average()) / Math.Sqrt((Sd(a) * Sd(a) / a.Length) + (Sd(b) * Sd(b) / b.Length));

    /// <summary>Mann-Whitney U of a against b as a z value (normal approximation, ties get their average rank):
    /// positive when a tends to take longer.</summary>
    private static double RankZ(double[] a, double[] b)
    {
        var all = a.Select(t => (T: t, A: true)).Concat(b.Select(t => (T: t, A: false))).OrderBy(x => x.T).ToArray();
        double rankSumA = 0;
        for (int i = 0; i < all.Length;)
        {
            int j = i;
            while (j < all.Length && all[j].T == all[i].T)
            {
                j++;
            }

            double rank = (i + j + 1) / 2.0; // ranks i+1 .. j, averaged
            for (int t = i; t < j; t++)
            {
                rankSumA += all[t].A ? rank : 0;
            }

            i = j;
        }

        double n1 = a.Length, n2 = b.Length;
        double u = rankSumA - (n1 * (n1 + 1) / 2);
        return (u - (n1 * n2 / 2)) / Math.Sqrt(n1 * n2 * (n1 + n2 + 1) / 12);
    }

    private static double Sd(double[] s)
    {
        double m = s.Average();
        return Math.Sqrt(s.Sum(x => (x - m) * (x - m)) / (s.Length - 1));
    }

    private static double P(double[] sorted, double percent) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * percent / 100))];

    private static double[] Trim(double[] s)
    {
        double[] sorted = s.Order().ToArray();
        int cut = sorted.Length / 20;
        return sorted[cut..^cut];
    }

    private static byte[] NonConforming(RSA key)
    {
        while (true)
        {
            byte[] c = RandomNumberGenerator.GetBytes(key.KeySize / 8);
            c[0] &= 0x7F;
            try
            {
                key.Decrypt(c, RSAEncryptionPadding.Pkcs1);
            }
            catch (CryptographicException)
            {
                return c;
            }
        }
    }

    /// <summary>EnvelopedData, random "AES-256-CBC" content of <paramref name="size"/> bytes, the list's ktri carrying <paramref name="ek"/>.</summary>
    private static byte[] BuildMessage(X509Certificate2 list, byte[] ek, int size) =>
        Envelope(list, ek, RandomNumberGenerator.GetBytes(16), RandomNumberGenerator.GetBytes(size + 16));

    /// <summary>A sender's message, DER: the list's ktri (PKCS#1 v1.5) carrying <paramref name="ek"/>, AES-256-CBC
    /// content. Written directly (EnvelopedCms would hold several copies of a 50 MB body).</summary>
    internal static byte[] Envelope(X509Certificate2 list, byte[] ek, byte[] iv, byte[] ct)
    {
        var w = new AsnWriter(AsnEncodingRules.DER, ct.Length + 2048);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(Oids.EnvelopedData);
            using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, true)))
            using (w.PushSequence())
            {
                w.WriteInteger(0);
                using (w.PushSetOf())
                using (w.PushSequence())
                {
                    w.WriteInteger(0);
                    using (w.PushSequence())
                    {
                        w.WriteEncodedValue(list.IssuerName.RawData);
                        w.WriteInteger(list.SerialNumberBytes.Span);
                    }

                    using (w.PushSequence())
                    {
                        w.WriteObjectIdentifier(Oids.RsaEncryption);
                        w.WriteNull();
                    }

                    w.WriteOctetString(ek);
                }

                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(Oids.Data);
                    using (w.PushSequence())
                    {
                        w.WriteObjectIdentifier(Oids.Aes256Cbc);
                        w.WriteOctetString(iv);
                    }

                    w.WriteOctetString(ct, new Asn1Tag(TagClass.ContextSpecific, 0));
                }
            }
        }

        return w.Encode();
    }
}
