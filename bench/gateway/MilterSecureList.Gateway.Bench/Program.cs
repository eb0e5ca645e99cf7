using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Storage;
using MilterSecureList.Gateway;
using MilterSecureList.Testing;

// In-process profile of gateway mode (docs/design.md, "Gateway performance"): the GatewayProcessor the daemon runs,
// on a SQLite directory and key files, without Postfix or the milter transport. Prints the CPU time per message of
// each stage (envelope lookups at MAIL/RCPT, end of message) and of the parts of end of message, against the
// cryptographic operations alone measured in the same process. CPU time is the whole process's (all threads),
// median of TRIALS trials after a warm-up, so JIT and GC count as they do in the daemon.
//   dotnet run -c Release --project bench/gateway/MilterSecureList.Gateway.Bench [-- ITERATIONS [TRIALS [inbound|outbound]]]
// With a stage named, only that stage runs ITERATIONS x TRIALS times, unmeasured: for perf record.
int iterations = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 100;
int trials = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5;
const int Recipients = 10;
const int Size = 102400;

DirectoryInfo temp = System.IO.Directory.CreateTempSubdirectory("securelist-gwprofile.");
try
{
    using var world = new World(temp.FullName, Recipients);
    byte[] text = Encoding.ASCII.GetBytes(string.Join("\r\n", Convert.ToBase64String(RandomNumberGenerator.GetBytes(Size * 3 / 4)).Chunk(76).Select(c => new string(c)))[..(Size - (Size % 78))]);
    string to = string.Join(", ", world.RecipientAddresses);
    byte[] outMessage = [.. Encoding.ASCII.GetBytes($"From: {World.User}\r\nTo: {to}\r\nSubject: gateway bench out\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"), .. text];
    byte[] inMessage = world.InboundMessage(text);
    (List<GatewayHeader> outHeaders, byte[] outBody) = GatewayMessages.Split(outMessage);
    (List<GatewayHeader> inHeaders, byte[] inBody) = GatewayMessages.Split(inMessage);

    GatewayProcessor processor = world.Processor;
    GatewayTransaction Envelope()
    {
        GatewayTransaction t = processor.Begin($"<{World.User}>");
        foreach (string r in world.RecipientAddresses)
        {
            if (processor.CheckRecipient(t, $"<{r}>") is { } refused)
            {
                throw new InvalidOperationException($"bench: {r} refused: {refused}");
            }
        }

        return t;
    }

    GatewayTransaction InboundEnvelope()
    {
        GatewayTransaction t = processor.Begin($"<{World.Peer}>");
        _ = processor.CheckRecipient(t, $"<{World.User}>");
        return t;
    }

    GatewayTransaction outbound = Envelope();
    GatewayTransaction inbound = InboundEnvelope();
    GatewayResult check = processor.Process(outbound, outHeaders, outBody, "BENCH");
    if (check.NewBody is null || !check.Reason.Contains("encrypted", StringComparison.Ordinal))
    {
        throw new InvalidOperationException($"bench: outbound not signed and encrypted: {check.Reason}");
    }

    check = processor.Process(inbound, inHeaders, inBody, "BENCH");
    if (check.NewBody is null || !check.Reason.Contains("verified", StringComparison.Ordinal))
    {
        throw new InvalidOperationException($"bench: inbound not decrypted and verified: {check.Reason}");
    }

    Console.WriteLine($"== gateway in-process profile: 100 KB messages, {Recipients} recipients, RSA-2048; CPU ms per message (whole process), median of {trials} trials of {iterations}; load average {File.ReadAllText("/proc/loadavg")[..14]}");
    var bench = new Bench(iterations, trials);
    if (args.Length > 2)
    {
        // perf record: one stage only, for as long as the profiler samples.
        Action stage = args[2] == "inbound"
            ? () => processor.Process(inbound, inHeaders, inBody, "BENCH")
            : () => { processor.Process(Envelope(), outHeaders, outBody, "BENCH"); };
        for (int i = 0; i < iterations * trials; i++)
        {
            stage();
        }

        return;
    }

    Console.WriteLine("-- outbound (sign + encrypt)");
    double envelope = bench.Run("MAIL + 10 RCPT (directory and certificate work)", () => Envelope());
    double eom = bench.Run("end of message (GatewayProcessor.Process)", () => processor.Process(outbound, outHeaders, outBody, "BENCH"));
    byte[] crlf = MessageText.ToCrlf(outBody);
    var content = new MimeEntityBytes(outHeaders.Where(h => h.Name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)).ToList(), crlf);
    byte[] canonical = SmimeSigner.Canonicalize(content);
    X509Certificate2 userCertificate = world.UserCertificate;
    RSA userKey = world.UserKey;
    bench.Run("  part: canonical form (SmimeSigner.Canonicalize)", () => SmimeSigner.Canonicalize(content));
    byte[] signature = SmimeSigner.CreateSignedData(canonical, userCertificate, userKey, [], DateTimeOffset.UtcNow, detached: true);
    bench.Run("  part: SignedData (detached, SignedDataWriter)", () => SmimeSigner.CreateSignedData(canonical, userCertificate, userKey, [], DateTimeOffset.UtcNow, detached: true));
    MimeEntityBytes signed = SmimeSigner.MultipartSigned(canonical, signature);
    bench.Run("  part: multipart/signed entity", () => SmimeSigner.MultipartSigned(canonical, signature).ToBytes());
    List<CmsRecipient> recipients = world.RecipientCertificates.Select(c => CmsRecipient.FromCertificate(c)).ToList();
    bench.Run("  part: 10 recipients imported (CmsRecipient)", () => world.RecipientCertificates.Select(c => CmsRecipient.FromCertificate(c)).ToList());
    byte[] signedBytes = signed.ToBytes();
    byte[] enveloped = CmsEncryptor.Encrypt(signedBytes, recipients);
    bench.Run("  part: EnvelopedData (CmsEncryptor)", () => CmsEncryptor.Encrypt(signedBytes, recipients));
    bench.Run("  part: base64 application/pkcs7-mime", () => SmimeSigner.Pkcs7Mime(enveloped, "enveloped-data"));
    List<GatewayHeader> canonicalHeaders = SmimeSigner.AlreadyCanonical(content) ?? throw new InvalidOperationException("bench: the text is not in canonical form");
    bench.Run("  all in one pass (SmimeSigner.SignedAndEnveloped, as Process runs it)", () => SmimeSigner.SignedAndEnveloped(canonicalHeaders, crlf, userCertificate, userKey, [], DateTimeOffset.UtcNow, recipients));
    double cryptoOut = bench.Run("crypto alone: 1 RSA private, 10 public, SHA-256 + AES-256-CBC over 100 KB", () => Crypto.Outbound(world, text, Recipients));

    Console.WriteLine("-- inbound (verify + decrypt)");
    double inEnvelope = bench.Run("MAIL + 1 RCPT", () => InboundEnvelope());
    long generation = world.Generation;
    double inEom = bench.Run("end of message (GatewayProcessor.Process)", () => processor.Process(inbound, inHeaders, inBody, "BENCH"));
    Console.WriteLine($"  directory writes during that run (harvests written): {world.Generation - generation}");
    byte[] cms = MessageText.FromBase64Lines(inBody)!;
    bench.Run("  part: base64 decode of the pkcs7-mime body", () => MessageText.FromBase64Lines(inBody)!);
    bench.Run("  part: EnvelopedData inspected (SessionKeyRewrapper)", () => SessionKeyRewrapper.Inspect(cms));
    byte[] plain = CmsDecryptor.Decrypt(cms, userCertificate, userKey);
    bench.Run("  part: decrypted (CmsDecryptor), key prepared per message", () => CmsDecryptor.Decrypt(cms, userCertificate, userKey));
    using var prepared = new ListKey(userCertificate, userKey, ownsKey: false);
    bench.Run("  part: decrypted (CmsDecryptor), key prepared once", () => CmsDecryptor.Decrypt(cms, prepared));
    bench.Run("  part: decrypted into a pooled buffer (CmsDecryptor.DecryptPooled)", () => { using PooledPlaintext p = CmsDecryptor.DecryptPooled(cms, prepared); return p.Span.Length; });
    MimeEntityBytes inner = MimeEntityBytes.Parse(MessageText.ToCrlf(plain));
    (ReadOnlyMemory<byte> signedPart, ReadOnlyMemory<byte> signaturePart) = MultipartSignedBody.Split(inner.Body, SmimeForm.Of(inner.Headers).Boundary!);
    MimeEntityBytes signatureEntity = MimeEntityBytes.Parse(signaturePart.Span);
    byte[] der = Convert.FromBase64String(Encoding.ASCII.GetString(signatureEntity.Body));
    var verifier = new SmimeVerifier(world.Anchors, TimeProvider.System);
    bench.Run("  part: signature verified (SmimeVerifier: SignedDataVerifier + chain)", () => verifier.VerifyDetached(signedPart, der, World.Peer));
    X509Certificate2 peer = verifier.VerifyDetached(signedPart, der, World.Peer).Signer!;
    bench.Run("  part: chain alone (TrustAnchors.Verify, X509Chain)", () => world.Anchors.Verify(peer, null, DateTimeOffset.UtcNow) ?? string.Empty);
    GatewayOptions options = processor.Options;
    processor.Options = new GatewayOptions { AuthservId = options.AuthservId, Encrypt = options.Encrypt, Harvest = false };
    bench.Run("  same with Harvest = no", () => processor.Process(inbound, inHeaders, inBody, "BENCH"));
    processor.Options = options;
    double cryptoIn = bench.Run("crypto alone: 1 RSA private, 2 public, SHA-256 + AES-256-CBC over 100 KB", () => Crypto.Inbound(world, text));

    Console.WriteLine($"outbound: {envelope + eom:F2} ms per message, crypto alone {cryptoOut:F2} ms, ratio {(envelope + eom) / cryptoOut:F2}");
    Console.WriteLine($"inbound:  {inEnvelope + inEom:F2} ms per message, crypto alone {cryptoIn:F2} ms, ratio {(inEnvelope + inEom) / cryptoIn:F2}");
}
finally
{
    temp.Delete(recursive: true);
}

/// <summary>CPU time per call of an action: warm-up, then the median of several trials.</summary>
internal sealed class Bench(int iterations, int trials)
{
    public double Run(string name, Action action)
    {
        var warm = Stopwatch.StartNew();
        while (warm.ElapsedMilliseconds < 1500)
        {
            action();
        }

        var cpu = new List<double>();
        var wall = new List<double>();
        long allocated0 = GC.GetTotalAllocatedBytes(precise: false);
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        for (int t = 0; t < trials; t++)
        {
            TimeSpan c0 = Process.GetCurrentProcess().TotalProcessorTime;
            long w0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < iterations; i++)
            {
                action();
            }

            wall.Add(Stopwatch.GetElapsedTime(w0).TotalMilliseconds / iterations);
            cpu.Add((Process.GetCurrentProcess().TotalProcessorTime - c0).TotalMilliseconds / iterations);
        }

        double median = cpu.Order().ElementAt(trials / 2);
        // Garbage per call and collections per 100 calls: large arrays (over 85,000 bytes) go to the large-object
        // heap, whose budget triggers full (gen 2) collections.
        double calls = (double)iterations * trials;
        double kb = (GC.GetTotalAllocatedBytes(precise: false) - allocated0) / calls / 1024;
        string gc = $"gc/100 {100 * (GC.CollectionCount(0) - gen0) / calls:F1}/{100 * (GC.CollectionCount(1) - gen1) / calls:F1}/{100 * (GC.CollectionCount(2) - gen2) / calls:F1}";
        Console.WriteLine($"{name,-70} cpu {median,7:F3} ms  (wall {wall.Order().ElementAt(trials / 2),7:F3} ms)  alloc {kb,6:F0} KB  {gc}");
        return median;
    }

    public double Run(string name, Func<object> action) => Run(name, () => { _ = action(); });
}

/// <summary>The cryptographic operations of one message alone, on the same OpenSSL through .NET.</summary>
internal static class Crypto
{
    private static readonly byte[] s_key = RandomNumberGenerator.GetBytes(32);
    private static readonly byte[] s_iv = RandomNumberGenerator.GetBytes(16);

    public static void Outbound(World world, byte[] body, int recipients)
    {
        byte[] hash = SHA256.HashData(body);
        _ = world.UserKey.SignHash(hash, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        for (int i = 0; i < recipients; i++)
        {
            _ = world.RecipientPublicKey.Encrypt(s_key, RSAEncryptionPadding.Pkcs1);
        }

        using var aes = Aes.Create();
        aes.Key = s_key;
        _ = aes.EncryptCbc(body, s_iv);
    }

    public static void Inbound(World world, byte[] body)
    {
        byte[] wrapped = world.UserPublicKey.Encrypt(s_key, RSAEncryptionPadding.Pkcs1);
        _ = world.UserKey.Decrypt(wrapped, RSAEncryptionPadding.Pkcs1);
        byte[] hash = SHA256.HashData(body);
        _ = world.RecipientPublicKey.VerifyHash(hash, hash, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var aes = Aes.Create();
        aes.Key = s_key;
        _ = aes.EncryptCbc(body, s_iv);
    }
}

/// <summary>A CA, the gateway user, a peer and the recipients in a SQLite directory, as bench/gateway/run.sh sets them up.</summary>
internal sealed class World : IDisposable
{
    public const string User = "alice@gw.bench.test";
    public const string Peer = "bob@partner.bench.test";

    private readonly string _dir;
    private readonly RSA _caKey = RSA.Create(2048);
    private readonly X509Certificate2 _ca;
    private readonly GatewayStore _store;
    private readonly SqlDirectoryStore _lists;
    private readonly StoreGatewayDirectory _directory;
    private readonly TrustAnchors _anchors;
    private readonly RSA _peerKey = RSA.Create(2048);

    public World(string dir, int recipients)
    {
        _dir = dir;
        var caRequest = new CertificateRequest("CN=Gateway Bench CA", _caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        _ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        File.WriteAllText(Path.Combine(dir, "ca.pem"), _ca.ExportCertificatePem() + "\n");
        UserKey = RSA.Create(2048);
        UserCertificate = Issue(User, UserKey, "alice");
        Issue(Peer, _peerKey, "bob");
        using RSA recipientKey = RSA.Create(2048);
        RecipientPublicKey = RSA.Create(recipientKey.ExportParameters(false));
        UserPublicKey = RSA.Create(UserKey.ExportParameters(false));
        RecipientAddresses = Enumerable.Range(1, recipients).Select(i => $"{(i > 1 ? i : string.Empty)}r@partner.bench.test").ToList();
        RecipientCertificates = RecipientAddresses.Select((a, i) => Issue(a, recipientKey, $"r{i + 1}")).ToList();

        var keys = new ListKeyStore(new KeysOptions { Directory = Path.Combine(dir, "keys") });
        var directoryOptions = new DirectoryOptions { Provider = DirectoryProvider.Sqlite, Path = Path.Combine(dir, "lists.db") };
        _store = GatewayStore.Open(directoryOptions, TimeProvider.System);
        _lists = SqlDirectoryStore.Open(directoryOptions, TimeProvider.System);
        var administration = new GatewayAdministration(_store, keys, TimeProvider.System);
        _anchors = TrustAnchors.Load(Path.Combine(dir, "ca.pem"));
        administration.Import(User, Path.Combine(dir, "alice.pem"), Path.Combine(dir, "alice.key"), null, false, null, null, null).Dispose();
        for (int i = 0; i < recipients; i++)
        {
            administration.ImportCertificate(RecipientAddresses[i], Path.Combine(dir, $"r{i + 1}.pem"), CertificateTrust.Manual, pin: true, allowMismatch: false, _anchors).Dispose();
        }

        // As the daemon wires it (GatewayRuntime): lookups cached while the change counter stands still.
        var changes = new DirectoryChangeCounter(_lists.GetGeneration, TimeSpan.FromSeconds(directoryOptions.CacheRefreshSeconds), TimeProvider.System);
        _directory = new StoreGatewayDirectory(_store, keys, null, changes);
        Processor = new GatewayProcessor(_directory, new GatewayOptions { AuthservId = "gw.bench.test", Encrypt = EncryptPolicy.Required }, _anchors, TimeProvider.System, NullLogger.Instance);
    }

    public GatewayProcessor Processor { get; }

    public long Generation => _lists.GetGeneration();

    public TrustAnchors Anchors => _anchors;

    public RSA UserKey { get; }

    public RSA UserPublicKey { get; }

    public X509Certificate2 UserCertificate { get; }

    public RSA RecipientPublicKey { get; }

    public List<string> RecipientAddresses { get; }

    public List<X509Certificate2> RecipientCertificates { get; }

    /// <summary>The inbound message as run.sh makes it: openssl signs the entity as the peer and encrypts it to the user.</summary>
    public byte[] InboundMessage(byte[] text)
    {
        string entity = Path.Combine(_dir, "entity");
        File.WriteAllBytes(entity, [.. "Content-Type: text/plain; charset=us-ascii\r\n\r\n"u8, .. text]);
        Openssl("cms", "-sign", "-in", entity, "-signer", Path.Combine(_dir, "bob.pem"), "-inkey", Path.Combine(_dir, "bob.key"), "-out", entity + ".signed");
        Openssl("cms", "-encrypt", "-aes256", "-from", Peer, "-to", User, "-subject", "gateway bench in", "-in", entity + ".signed", "-out", entity + ".eml", Path.Combine(_dir, "alice.pem"));
        return File.ReadAllBytes(entity + ".eml");
    }

    private static void Openssl(params string[] args)
    {
        using Process process = Process.Start(new ProcessStartInfo("openssl", args) { RedirectStandardError = true })!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"openssl {string.Join(' ', args)}: {error}");
        }
    }

    private X509Certificate2 Issue(string address, RSA key, string stem)
    {
        CertificateRequest request = SmimeCertificateRequest.For(address, key);
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using X509Certificate2 issued = request.Create(_ca.SubjectName, X509SignatureGenerator.CreateForRSA(_caKey, RSASignaturePadding.Pkcs1), DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), serial);
        X509Certificate2 made = X509CertificateLoader.LoadCertificate(issued.RawData);
        File.WriteAllText(Path.Combine(_dir, stem + ".pem"), made.ExportCertificatePem() + "\n");
        string keyFile = Path.Combine(_dir, stem + ".key");
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return made;
    }

    public void Dispose()
    {
        _directory.Dispose();
        _store.Dispose();
        _lists.Dispose();
        _anchors.Dispose();
        _caKey.Dispose();
        _peerKey.Dispose();
    }
}
