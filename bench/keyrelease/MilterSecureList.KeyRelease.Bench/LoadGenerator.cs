using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.KeyRelease;

/// <summary>What the load generator measured; CPU times are each process's own over the phase.</summary>
internal sealed record LoadResult(
    long Counted,
    double Window,
    int InFlightAtEnd,
    double Drain,
    long Failures,
    bool Exhausted,
    TimeSpan ServerCpuClosed,
    TimeSpan LoadCpuClosed,
    double OpenRate,
    int OpenCount,
    double P50,
    double P99,
    double Max,
    TimeSpan ServerCpuOpen,
    TimeSpan ServerRunQueueClosed,
    TimeSpan LoadRunQueueClosed,
    TimeSpan ServerJitInWindow,
    TimeSpan LoadJitInWindow,
    long ServerMethodsJittedInWindow,
    ServerPhase ClosedPhase,
    ServerPhase OpenPhase,
    string OpenTail);

/// <summary>What the key server's process did in one phase besides answering: its collections and their pauses, and the
/// release writer's transactions (where a latency tail would come from).</summary>
internal sealed record ServerPhase(int Gen0, int Gen1, int Gen2, TimeSpan GcPause, long Allocated, long Commits, long Writes, TimeSpan CommitTime, TimeSpan LongestCommit, TimeSpan RunQueue)
{
    private static long s_longestPauseTicks;

    public TimeSpan LongestGcPause { get; init; }

    /// <summary>The longest single collection pause since the last call: a thread looks at each collection's pause
    /// (GC.GetGCMemoryInfo keeps the last one) every 10 ms, more often than they happen here.</summary>
    public static TimeSpan TakeLongestPause() => TimeSpan.FromTicks(Interlocked.Exchange(ref s_longestPauseTicks, 0));

    public static void WatchPauses(CancellationToken stop) => new Thread(() =>
    {
        long seen = -1;
        while (!stop.IsCancellationRequested)
        {
            GCMemoryInfo info = GC.GetGCMemoryInfo(GCKind.Any);
            if (info.Index != seen)
            {
                seen = info.Index;
                long ticks = info.PauseDurations[0].Ticks + info.PauseDurations[1].Ticks;
                if (ticks > Interlocked.Read(ref s_longestPauseTicks))
                {
                    Interlocked.Exchange(ref s_longestPauseTicks, ticks);
                }
            }

            Thread.Sleep(10);
        }
    }) { IsBackground = true, Name = "GC pause watch" }.Start();

    public static ServerPhase Now(ReleaseStore store)
    {
        CommitStatistics c = store.TakeCommitStatistics();
        TakeLongestPause();
        return new(GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration(), GC.GetTotalAllocatedBytes(), c.Commits, c.Writes, c.Time, TimeSpan.Zero, LoadGenerator.RunQueueWait());
    }

    /// <summary>From <paramref name="start"/> to now; the longest commit is the one since <paramref name="start"/> was taken.</summary>
    public static ServerPhase Since(ServerPhase start, ReleaseStore store)
    {
        CommitStatistics c = store.TakeCommitStatistics();
        return new(GC.CollectionCount(0) - start.Gen0, GC.CollectionCount(1) - start.Gen1, GC.CollectionCount(2) - start.Gen2,
            GC.GetTotalPauseDuration() - start.GcPause, GC.GetTotalAllocatedBytes() - start.Allocated, c.Commits - start.Commits, c.Writes - start.Writes, c.Time - start.CommitTime, c.Longest,
            LoadGenerator.RunQueueWait() - start.RunQueue) { LongestGcPause = TakeLongestPause() };
    }

    /// <summary>Per release: <paramref name="releases"/> answered in the phase.</summary>
    public string Describe(long releases) => FormattableString.Invariant(
        $"{Allocated / 1024.0 / Math.Max(1, releases):F1} KB allocated per release; GCs gen0/1/2 {Gen0}/{Gen1}/{Gen2}, paused {GcPause.TotalMilliseconds:F1} ms (longest {LongestGcPause.TotalMilliseconds:F1}); {Commits} commits of {(Commits == 0 ? 0 : (double)Writes / Commits):F1} writes, {(Commits == 0 ? 0 : CommitTime.TotalMilliseconds / Commits):F2} ms each, longest {LongestCommit.TotalMilliseconds:F1} ms; threads waited {(RunQueue < TimeSpan.Zero ? "? (a thread ended in the phase and took its figure with it)" : FormattableString.Invariant($"{RunQueue.TotalMilliseconds / Math.Max(1, releases):F2}"))} ms per release for a core");
}

/// <summary>
/// The benchmark's clients, run as a child process so that its CPU time is its own: the key server's process then
/// measures only the key server. Bodies come pre-serialised from a file; HTTP/1.1 keep-alive, one TLS connection per
/// client, opened before the clock starts (<see cref="RawHttpsClient"/>).
/// </summary>
internal static class LoadGenerator
{
    /// <summary>The HttpClient handler of the in-process HTTPS step (Program's profile).</summary>
    public static SocketsHttpHandler Handler(X509Certificate2 trusted, int connections) => new()
    {
        MaxConnectionsPerServer = connections,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        SslOptions = { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null && c.GetRawCertData().AsSpan().SequenceEqual(trusted.RawData) },
    };

    /// <summary>Parent side: starts the child, reads its CPU time and this process's at the child's phase markers.</summary>
    public static async Task<LoadResult> SpawnAsync(string bodies, Uri uri, string tlsCertificate, int clients, TimeSpan warmup, int seconds, ReleaseStore store)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }

        foreach (string a in (string[])["--load-child", bodies, uri.ToString(), tlsCertificate, clients.ToString(CultureInfo.InvariantCulture),
            warmup.TotalSeconds.ToString(CultureInfo.InvariantCulture), seconds.ToString(CultureInfo.InvariantCulture)])
        {
            start.ArgumentList.Add(a);
        }

        using Process child = Process.Start(start)!;
        TimeSpan closedCpu = default, openCpu = default, mark = default, queued = default;
        long jitted = 0, methods = 0;
        var warming = Stopwatch.StartNew();
        string[]? closed = null, open = null;
        string tail = "";
        ServerPhase phase = ServerPhase.Now(store), closedPhase = phase, openPhase = phase;
        while (await child.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            string[] f = line.Split(' ');
            switch (f[0])
            {
                case "warm":
                    // The child's JIT has settled; wait for ours (the key server's) too, then open the window.
                    await JitQuietAsync(warmup, warmup * 4, warming).ConfigureAwait(false);
                    await child.StandardInput.WriteLineAsync("window").ConfigureAwait(false);
                    await child.StandardInput.FlushAsync().ConfigureAwait(false);
                    Console.WriteLine($"warm-up {warming.Elapsed.TotalSeconds:F1} s (until each process spent < 1 % of {warmup.TotalSeconds:F0} s in the JIT, or {(warmup * 4).TotalSeconds:F0} s passed)");
                    break;
                case "window-start":
                    jitted = System.Runtime.JitInfo.GetCompilationTime().Ticks;
                    methods = System.Runtime.JitInfo.GetCompiledMethodCount();
                    mark = Environment.CpuUsage.TotalTime;
                    queued = RunQueueWait();
                    phase = ServerPhase.Now(store);
                    break;
                case "open-start":
                    phase = ServerPhase.Now(store);
                    // Only the CPU mark: the window's JIT and run-queue figures are kept as they were at its end.
                    mark = Environment.CpuUsage.TotalTime;
                    break;
                case "window-end":
                    jitted = System.Runtime.JitInfo.GetCompilationTime().Ticks - jitted;
                    methods = System.Runtime.JitInfo.GetCompiledMethodCount() - methods;
                    closedCpu = Environment.CpuUsage.TotalTime - mark;
                    queued = RunQueueWait() - queued;
                    closedPhase = ServerPhase.Since(phase, store);
                    break;
                case "open-end":
                    openCpu = Environment.CpuUsage.TotalTime - mark;
                    openPhase = ServerPhase.Since(phase, store);
                    break;
                case "tail":
                    tail = line[5..];
                    break;
                case "closed":
                    closed = f;
                    break;
                case "open":
                    open = f;
                    break;
                default:
                    Console.WriteLine("load generator: " + line);
                    break;
            }
        }

        await child.WaitForExitAsync().ConfigureAwait(false);
        if (closed is null || open is null)
        {
            throw new InvalidOperationException($"the load generator exited ({child.ExitCode}) without its figures");
        }

        static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);
        return new LoadResult((long)D(closed[1]), D(closed[2]), (int)D(closed[3]), D(closed[4]), (long)D(closed[5]) + (long)D(open[6]), closed[6] == "1",
            closedCpu, TimeSpan.FromMilliseconds(D(closed[7])), D(open[1]), (int)D(open[2]), D(open[3]), D(open[4]), D(open[5]), openCpu,
            queued, TimeSpan.FromMilliseconds(D(closed[8])), TimeSpan.FromTicks(jitted), TimeSpan.FromTicks((long)D(closed[9])), methods,
            closedPhase, openPhase, tail);
    }

    /// <summary>Child side: ARGS = bodies-file url tls-certificate clients warm-up-seconds window-seconds.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        byte[][] bodies = Read(args[0]);
        var uri = new Uri(args[1]);
        using X509Certificate2 tls = X509CertificateLoader.LoadCertificateFromFile(args[2]);
        int clients = int.Parse(args[3], CultureInfo.InvariantCulture);
        var warmup = TimeSpan.FromSeconds(double.Parse(args[4], CultureInfo.InvariantCulture));
        var window = TimeSpan.FromSeconds(double.Parse(args[5], CultureInfo.InvariantCulture));

        int next = -1;
        byte[]? Take()
        {
            int i = Interlocked.Increment(ref next);
            return i < bodies.Length ? bodies[i] : null;
        }

        // Every connection opened (TLS handshake) before the clock starts.
        await using RawHttpsClient http = await RawHttpsClient.OpenAsync(uri, tls, clients).ConfigureAwait(false);
        Console.WriteLine($"{clients} TLS connections open, {http.Negotiated}");
        long failures = 0;
        async Task Send(byte[] body)
        {
            if (!await http.PostAsync(body).ConfigureAwait(false))
            {
                Interlocked.Increment(ref failures);
            }
        }

        // One request per client at once.
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Send(Take()!))).ConfigureAwait(false);

        // Closed loop. The window is [start marker, end marker]; a release counts when its answer arrives inside it.
        // Clients stop sending at the end marker; what was in flight then is answered but not counted. The load runs from
        // here; the window opens once the tiered JIT of both processes has settled (the parent says when).
        var clock = Stopwatch.StartNew();
        var completions = new long[bodies.Length];
        int completed = 0;
        bool exhausted = false;
        bool stop = false;
        long jittedInWindow = 0;
        Task<(TimeSpan Start, TimeSpan End, TimeSpan Cpu, TimeSpan Queued)> markers = Task.Run(async () =>
        {
            await JitQuietAsync(warmup, warmup * 4, clock).ConfigureAwait(false);
            Console.WriteLine("warm");
            if (await Console.In.ReadLineAsync().ConfigureAwait(false) != "window")
            {
                throw new InvalidOperationException("the benchmark did not open the window");
            }

            long jitted = System.Runtime.JitInfo.GetCompilationTime().Ticks;
            TimeSpan cpu = Environment.CpuUsage.TotalTime;
            TimeSpan queued = RunQueueWait();
            TimeSpan s = clock.Elapsed;
            Console.WriteLine("window-start");
            await Task.Delay(Max(s + window - clock.Elapsed)).ConfigureAwait(false);
            Volatile.Write(ref stop, true);
            jittedInWindow = System.Runtime.JitInfo.GetCompilationTime().Ticks - jitted;
            TimeSpan e = clock.Elapsed;
            cpu = Environment.CpuUsage.TotalTime - cpu;
            queued = RunQueueWait() - queued;
            Console.WriteLine("window-end");
            return (s, e, cpu, queued);
        });
        Task[] workers = [.. Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            while (!Volatile.Read(ref stop))
            {
                if (Take() is not { } body)
                {
                    exhausted = true;
                    break;
                }

                await Send(body).ConfigureAwait(false);
                completions[Interlocked.Increment(ref completed) - 1] = clock.Elapsed.Ticks;
            }
        }))];
        (TimeSpan windowStart, TimeSpan windowEnd, TimeSpan closedCpu, TimeSpan closedQueued) = await markers.ConfigureAwait(false);
        await Task.WhenAll(workers).ConfigureAwait(false);
        double drain = (clock.Elapsed - windowEnd).TotalSeconds;
        long[] times = completions[..completed];
        long counted = times.Count(t => t >= windowStart.Ticks && t < windowEnd.Ticks);
        int late = times.Count(t => t >= windowEnd.Ticks);
        double seconds = (windowEnd - windowStart).TotalSeconds;
        Console.WriteLine(FormattableString.Invariant($"closed {counted} {seconds:F4} {late} {drain:F3} {failures} {(exhausted ? 1 : 0)} {closedCpu.TotalMilliseconds:F1} {closedQueued.TotalMilliseconds:F1} {jittedInWindow}"));

        // Open loop at half the closed-loop rate, requests at even intervals.
        long closedFailures = failures;
        double rate = Math.Max(1, counted / seconds / 2);
        int count = Math.Min(bodies.Length - Math.Min(bodies.Length, next + 1), (int)(rate * window.TotalSeconds));
        var latencies = new double[count];
        var sentAt = new double[count];
        var tasks = new Task[count];
        TimeSpan openCpu = Environment.CpuUsage.TotalTime;
        Console.WriteLine("open-start");
        var open = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            TimeSpan wait = TimeSpan.FromSeconds(i / rate) - open.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait).ConfigureAwait(false);
            }

            int n = i;
            tasks[i] = Task.Run(async () =>
            {
                byte[] body = Take()!;
                long t0 = Stopwatch.GetTimestamp();
                sentAt[n] = open.Elapsed.TotalMilliseconds;
                await Send(body).ConfigureAwait(false);
                latencies[n] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            });
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
        openCpu = Environment.CpuUsage.TotalTime - openCpu;
        Console.WriteLine("open-end");
        Console.WriteLine("tail " + Tail(latencies, sentAt));
        Array.Sort(latencies);
        double p50 = count == 0 ? 0 : latencies[count / 2];
        double p99 = count == 0 ? 0 : latencies[(int)Math.Min(count - 1, Math.Ceiling(count * 0.99) - 1)];
        double max = count == 0 ? 0 : latencies[^1];
        Console.WriteLine(FormattableString.Invariant($"open {rate:F1} {count} {p50:F2} {p99:F2} {max:F2} {failures - closedFailures} {openCpu.TotalMilliseconds:F1}"));
        return 0;
    }

    /// <summary>How long this process's threads have been runnable but waiting for a core (Linux schedstat): on a
    /// shared machine, the time other jobs took from us.</summary>
    public static TimeSpan RunQueueWait()
    {
        long ns = 0;
        try
        {
            foreach (string task in System.IO.Directory.EnumerateDirectories("/proc/self/task"))
            {
                try
                {
                    ns += long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[1], CultureInfo.InvariantCulture);
                }
                catch (IOException)
                {
                    // the thread ended meanwhile
                }
            }
        }
        catch (IOException)
        {
            return TimeSpan.Zero;
        }

        return TimeSpan.FromTicks(ns / 100);
    }

    /// <summary>Waits until this process has spent less than 1 % of <paramref name="quiet"/> compiling (tiered
    /// compilation has settled), or until <paramref name="clock"/> reaches <paramref name="limit"/>.</summary>
    public static async Task JitQuietAsync(TimeSpan quiet, TimeSpan limit, Stopwatch clock)
    {
        var samples = new Queue<(TimeSpan At, TimeSpan Jit)>();
        while (clock.Elapsed < limit)
        {
            samples.Enqueue((clock.Elapsed, System.Runtime.JitInfo.GetCompilationTime()));
            while (samples.Peek().At < clock.Elapsed - quiet)
            {
                (TimeSpan at, TimeSpan jit) = samples.Dequeue();
                if (samples.Count > 0 && System.Runtime.JitInfo.GetCompilationTime() - jit < quiet / 100)
                {
                    return;
                }
            }

            await Task.Delay(250).ConfigureAwait(false);
        }
    }

    /// <summary>Where the slowest 1 % of the open loop's requests were sent: a few bursts (a stall of the server: a
    /// collection, a checkpoint) or spread over the run (queueing).</summary>
    private static string Tail(double[] latencies, double[] sentAt)
    {
        int n = Math.Max(1, latencies.Length / 100);
        int[] slowest = [.. Enumerable.Range(0, latencies.Length).OrderByDescending(i => latencies[i]).Take(n)];
        int buckets = slowest.Select(i => (int)(sentAt[i] / 100)).Distinct().Count();
        string top = string.Join(", ", slowest.OrderBy(i => sentAt[i]).GroupBy(i => (int)(sentAt[i] / 100))
            .OrderByDescending(g => g.Count()).Take(5).Select(g => FormattableString.Invariant($"{g.Count()} sent at {g.Key / 10.0:F1} s (up to {g.Max(i => latencies[i]):F0} ms)")));
        return FormattableString.Invariant($"the slowest {n} requests were sent in {buckets} distinct 100-ms slots; largest: {top}");
    }

    private static TimeSpan Max(TimeSpan t) => t > TimeSpan.Zero ? t : TimeSpan.Zero;

    private static byte[][] Read(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        var list = new List<byte[]>();
        while (reader.BaseStream.Position < reader.BaseStream.Length)
        {
            list.Add(reader.ReadBytes(reader.ReadInt32()));
        }

        return [.. list];
    }
}
