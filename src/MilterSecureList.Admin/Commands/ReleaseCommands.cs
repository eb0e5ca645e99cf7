using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;
using MilterSecureList.KeyRelease;
using MilterSecureList.Mime;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist release fetch|status|revoke</c> (docs/key-release.md §4.3, §5). fetch exits 0 fetched, 1 key
/// server unreachable or a failure on our side, 2 usage or no release entry, 3 refused by the key server.</summary>
public static class ReleaseCommands
{
    public const int ExitRefused = 3;

    public static Command Build(AdminContext context)
    {
        var release = new Command("release", "Key-release lists: fetch a post's key from the key server, show who fetched, revoke");
        release.Subcommands.Add(Fetch(context));
        release.Subcommands.Add(Status(context));
        release.Subcommands.Add(Revoke(context));
        return release;
    }

    private static Command Fetch(AdminContext context)
    {
        var cert = new Option<string>("--cert") { Description = "Your certificate (PEM or DER)", Required = true };
        var key = new Option<string>("--key") { Description = "Your private key (PEM, mode 0600)", Required = true };
        var member = new Option<string?>("--member") { Description = "Your list address (default: the certificate's first e-mail address)" };
        var serverCert = new Option<string?>("--server-cert") { Description = "The key server's TLS certificate or its CA (PEM); default: the system's trust store" };
        var input = new Option<string>("--in") { Description = "The post as received (RFC 5322); - for standard input", Required = true };
        var output = new Option<string>("--out") { Description = "Where to write the message any S/MIME client opens; - for standard output", Required = true };
        var command = new Command("fetch", "Ask the key server for your key to a post and write the post as ordinary S/MIME")
        {
            cert, key, member, serverCert, input, output,
        };
        command.SetAction(parse => context.Run(() =>
        {
            (X509Certificate2 certificate, AsymmetricAlgorithm privateKey) = ListKeyCommands.LoadIdentity(parse.GetValue(cert)!, parse.GetValue(key)!);
            using (privateKey)
            {
                IReadOnlyList<string> named = CertificateInspector.GetEmailAddresses(certificate);
                string address = parse.GetValue(member) ?? (named.Count > 0 ? named[0]
                    : throw new UsageException("the certificate names no e-mail address: give --member ADDRESS"));
                X509Certificate2Collection? trust = null;
                if (parse.GetValue(serverCert) is string trustFile)
                {
                    trust = [];
                    try
                    {
                        trust.ImportFromPemFile(trustFile);
                    }
                    catch (Exception e) when (e is CryptographicException or IOException)
                    {
                        throw new UsageException($"{trustFile}: not a PEM certificate file ({e.Message})");
                    }
                }

                using var client = new KeyReleaseClient(trust, null, TimeSpan.FromSeconds(30));
                string? entryId = null;
                var buffer = new MemoryStream();
                try
                {
                    using Stream inStream = MessageFiles.OpenInput(parse.GetValue(input)!);
                    SmimeBodyRewriter.Rewrite(inStream, buffer, cms =>
                    {
                        KeyReleaseEntry entry = KeyReleaseReader.Find(cms)
                            ?? throw new UsageException("the message has no key-release entry (not a post of a release list, or already fetched)");
                        entryId = entry.MessageIdHex;
                        byte[] recipientInfo = ReleaseFetcher.FetchAsync(client, entry, address, certificate, privateKey, context.Time.GetUtcNow(), CancellationToken.None).GetAwaiter().GetResult()
                            ?? throw new ReleaseRefusedException(entry);
                        return KeyReleaseReader.Insert(cms, recipientInfo);
                    });
                }
                catch (MimeFormatException e)
                {
                    throw new UsageException(e.Message);
                }
                catch (CmsRewrapException e) when (e.Reason is not CmsRewrapFailure.InvalidArgument)
                {
                    throw new UsageException(e.Message);
                }
                catch (UriFormatException e)
                {
                    throw new UsageException("the key-release entry names no valid key server URL: " + e.Message);
                }
                catch (ReleaseRefusedException e)
                {
                    context.Error.WriteLine($"securelist: the key server {e.Entry.KeyServer} refused the key to release {e.Entry.MessageIdHex} for {AdminContext.Printable(address)} (not a member, revoked or expired)");
                    return ExitRefused;
                }
                catch (KeyServerUnavailableException e)
                {
                    context.Error.WriteLine($"securelist: {AdminContext.Printable(e.Message)}");
                    return AdminContext.ExitFailure;
                }

                // Written only when complete: never a half-written message.
                MessageFiles.WriteOutput(parse.GetValue(output)!, buffer);
                if (parse.GetValue(output) != "-")
                {
                    context.Output.WriteLine($"fetched the key to release {entryId} for {address}");
                }

                return AdminContext.ExitOk;
            }
        }));
        return command;
    }

    private static Command Status(AdminContext context)
    {
        var id = new Argument<string>("MSGID") { Description = "The release id (32 hex digits, from the X-SecureList-Release header)" };
        var command = new Command("status", "Who fetched a post's key and when, revocations, expiry") { id };
        command.SetAction(parse => context.Run(() =>
        {
            string messageId = CheckId(parse.GetValue(id)!);
            using ReleaseStore store = ReleaseStore.Open(context.LoadConfiguration(parse).Directory, context.Time);
            ReleaseRecord record = store.GetMessage(messageId) ?? throw new UsageException($"no release {messageId} on this key server");
            context.Output.WriteLine($"release {record.MessageId}: list {record.List}, sender {record.Sender}");
            context.Output.WriteLine($"deposited {Time(record.CreatedAt)}, expires {Time(record.NotAfter)}");
            context.Output.WriteLine(record.RevokedAt is { } r ? $"revoked {Time(r)}" : "not revoked");
            context.Output.WriteLine(record.DeletedAt is { } d
                ? $"key deleted {Time(d)} ({record.DeleteReason ?? "by the operator"})"
                : $"key held (release-delete {KeyReleaseListOptions.Name(record.DeletePolicy)})");
            if (record.DeletedAt is null && record.DeletePolicy == ReleaseDeletePolicy.AfterAll)
            {
                context.Output.WriteLine($"{store.GetPendingCount(messageId)} member(s) at deposit time have not fetched yet");
            }

            foreach (string revoked in store.GetRevokedMembers(messageId))
            {
                context.Output.WriteLine($"revoked for {revoked}");
            }

            IReadOnlyList<ReleaseFetch> fetches = store.GetFetches(messageId);
            context.Output.WriteLine($"{fetches.Count} member(s) fetched:");
            foreach (ReleaseFetch f in fetches)
            {
                context.Output.WriteLine($"  {f.Member,-32} first {Time(f.FirstAt)}  last {Time(f.LastAt)}  {f.Count}x");
            }

            int refused = store.GetAudit(messageId).Count(a => a.Result == "refused");
            context.Output.WriteLine($"{refused} request(s) refused");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Revoke(AdminContext context)
    {
        var id = new Argument<string>("MSGID") { Description = "The release id (32 hex digits)" };
        var member = new Option<string?>("--member") { Description = "Revoke only for this member" };
        var command = new Command("revoke", "Refuse every later request for a post's key (or one member's)") { id, member };
        command.SetAction(parse => context.Run(() =>
        {
            string messageId = CheckId(parse.GetValue(id)!);
            string? who = parse.GetValue(member);
            if (who is not null && !EmailAddress.IsValid(who))
            {
                throw new UsageException($"'{who}' is not a mail address");
            }

            using ReleaseStore store = ReleaseStore.Open(context.LoadConfiguration(parse).Directory, context.Time);
            if (!store.Revoke(messageId, who))
            {
                throw new UsageException($"no release {messageId} on this key server");
            }

            context.Output.WriteLine(who is null ? $"release {messageId} revoked" : $"release {messageId} revoked for {who}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static string CheckId(string text)
    {
        string id = text.Trim().ToLowerInvariant();
        return id.Length == 2 * KeyReleaseEntry.MessageIdLength && id.All(char.IsAsciiHexDigit)
            ? id
            : throw new UsageException($"'{text}' is not a release id (32 hex digits)");
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", System.Globalization.CultureInfo.InvariantCulture);

    private sealed class ReleaseRefusedException(KeyReleaseEntry entry) : Exception("refused")
    {
        public KeyReleaseEntry Entry { get; } = entry;
    }
}
