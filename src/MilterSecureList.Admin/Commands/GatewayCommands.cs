using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Configuration;
using Microsoft.Extensions.Logging;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using MilterSecureList.Directory.Storage;
using MilterSecureList.Gateway;
using MilterSecureList.KeyRelease;

namespace MilterSecureList.Admin.Commands;

/// <summary>
/// <c>securelist gateway check</c>: runs the gateway offline on one message with the same directory, keys and
/// [Gateway] settings as the daemon, and prints the verdict and every modification. The first output line is the
/// SMTP reply the milter would give. Exit 0 = accepted, 65 = rejected, 75 = tempfailed, 1 = error, 2 = usage.
/// </summary>
public static class GatewayCommands
{
    public static Command Build(AdminContext context)
    {
        var gateway = new Command("gateway", "S/MIME gateway for local users: offline check");
        gateway.Subcommands.Add(Check(context));
        return gateway;
    }

    private static Command Check(AdminContext context)
    {
        var from = new Option<string>("--from") { Description = "Envelope sender (MAIL FROM)", Required = true };
        var rcpts = new Option<string[]>("--rcpt") { Description = "Envelope recipient (repeat for each)", Required = true };
        var input = new Option<string>("--in") { Description = "The message (RFC 5322); - for standard input", Required = true };
        var output = new Option<string?>("--out") { Description = "Write the message as it would be delivered" };
        var command = new Command("check", "Run the gateway offline and print the verdict and modifications") { from, rcpts, input, output };
        command.SetAction(parse => context.Run(() =>
        {
            AdminConfiguration configuration = context.LoadConfiguration(parse);
            GatewayOptions options = GatewayAdminSession.LoadOptions(configuration);
            using TrustAnchors anchors = TrustAnchors.Load(options.TrustAnchors);
            using GatewayStore store = GatewayStore.Open(configuration.Directory, context.Time);
            using SqlDirectoryStore lists = SqlDirectoryStore.Open(configuration.Directory, context.Time);
            using var directory = new StoreGatewayDirectory(store, new ListKeyStore(configuration.Keys), address =>
                lists.TryGetList(address, out _) ? lists.GetListKeys(address).FirstOrDefault(k => k.IsCurrent && !k.IsRetired)?.Certificate : null);
            var log = new LineLogger();
            using ReleaseFetcher fetcher = ReleaseFetcherFor(configuration, context.Time);
            var processor = new GatewayProcessor(directory, options, anchors, context.Time, log) { KeyRelease = fetcher };

            GatewayTransaction transaction = processor.Begin(parse.GetValue(from)!);
            var report = new List<string> { $"direction: {transaction.Direction.ToString().ToLowerInvariant()}" };
            foreach (string rcpt in parse.GetValue(rcpts)!.SelectMany(r => r.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
            {
                GatewayReply? refusal = processor.CheckRecipient(transaction, rcpt);
                report.Add($"RCPT <{rcpt.Trim('<', '>')}>: {(refusal is null ? "accepted" : $"refused {refusal}")}");
            }

            if (transaction.Recipients.Count == 0)
            {
                string first = report.FirstOrDefault(l => l.Contains(": refused ", StringComparison.Ordinal)) is { } line
                    ? line[(line.IndexOf(": refused ", StringComparison.Ordinal) + 10)..]
                    : "554 5.5.1 no valid recipients";
                context.Output.WriteLine(first);
                report.ForEach(context.Output.WriteLine);
                return CheckCommand.ExitRejected;
            }

            byte[] message;
            using (Stream stream = MessageFiles.OpenInput(parse.GetValue(input)!))
            using (var buffer = new MemoryStream())
            {
                stream.CopyTo(buffer);
                message = buffer.ToArray();
            }

            (List<GatewayHeader> headers, byte[] body) = GatewayMessages.Split(message);
            GatewayResult result = processor.Process(transaction, headers, body, "offline");
            context.Output.WriteLine(result.Reply?.ToString() ?? "250 2.0.0 continue");
            report.ForEach(context.Output.WriteLine);
            context.Output.WriteLine($"verdict: {result.Verdict.ToString().ToLowerInvariant()} ({result.Reason})");
            foreach ((string name, int occurrence) in result.DeleteHeaders)
            {
                context.Output.WriteLine($"delete header {name} #{occurrence}");
            }

            foreach (GatewayHeader header in result.PrependHeaders)
            {
                context.Output.WriteLine($"insert header {header.Name}: {header.Value}");
            }

            foreach (GatewayHeader header in result.AddHeaders)
            {
                context.Output.WriteLine($"add header {header.Name}: {header.Value.ReplaceLineEndings(" ")}");
            }

            if (result.NewBody is { } newBody)
            {
                context.Output.WriteLine($"replace body ({newBody.Length} bytes)");
            }

            log.Lines.ForEach(l => context.Output.WriteLine($"log: {l}"));
            if (parse.GetValue(output) is { } outPath && result.Verdict == GatewayVerdict.Continue)
            {
                MessageFiles.WriteOutput(outPath, new MemoryStream(result.Apply(headers, body)));
            }

            return result.Verdict switch
            {
                GatewayVerdict.Reject => CheckCommand.ExitRejected,
                GatewayVerdict.Tempfail => CheckCommand.ExitTempfail,
                _ => AdminContext.ExitOk,
            };
        }));
        return command;
    }

    /// <summary>The daemon's key-release fetch for <c>[Gateway] KeyServers</c>: TLS trust from <c>[KeyRelease]
    /// TrustedCertificate</c> (the system's store when unset), <c>[KeyRelease] Timeout</c>.</summary>
    private static ReleaseFetcher ReleaseFetcherFor(AdminConfiguration configuration, TimeProvider time)
    {
        IniSection section = configuration.Ini.Section("KeyRelease");
        X509Certificate2Collection? trust = null;
        if (section.Value("TrustedCertificate") is { Length: > 0 } file)
        {
            trust = [];
            try
            {
                trust.ImportFromPemFile(file);
            }
            catch (Exception e) when (e is CryptographicException or IOException)
            {
                throw new UsageException($"[KeyRelease] TrustedCertificate: {file}: not a PEM certificate file ({e.Message})");
            }
        }

        TimeSpan timeout = section.GetDuration("Timeout", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(2));
        return new ReleaseFetcher(new KeyReleaseClient(trust, null, timeout), time);
    }

    /// <summary>Collects the gateway's log lines (audit included) for the report.</summary>
    private sealed class LineLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
