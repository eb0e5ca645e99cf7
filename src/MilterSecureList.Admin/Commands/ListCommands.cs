using System.CommandLine;
using System.Text;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory;
using Spectre.Console;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist list create|show|ls|delete|export-cert|rollover|set</c>.</summary>
public static class ListCommands
{
    public static Command Build(AdminContext context)
    {
        var list = new Command("list", "Create, inspect and change mailing lists");
        list.Subcommands.Add(Create(context));
        list.Subcommands.Add(Show(context));
        list.Subcommands.Add(Ls(context));
        list.Subcommands.Add(Delete(context));
        list.Subcommands.Add(ExportCert(context));
        list.Subcommands.Add(Rollover(context));
        list.Subcommands.Add(Set(context));
        return list;
    }

    private static Argument<string> AddressArgument(string description = "List address") =>
        new("ADDRESS") { Description = description };

    private static Command Create(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var mode = new Option<string>("--mode") { Description = "rekey (default) or double", DefaultValueFactory = _ => "rekey" };
        var owner = new Option<string?>("--owner") { Description = "List owner's address (receives notices)" };
        var keyType = new Option<string>("--key-type") { Description = "rsa2048 (default), rsa3072, rsa4096, p256 or p384", DefaultValueFactory = _ => "rsa2048" };
        var cert = new Option<string?>("--cert") { Description = "Import this CA-issued certificate instead of generating one (with --key)" };
        var key = new Option<string?>("--key") { Description = "The private key (PEM) for --cert" };
        var allowMismatch = new Option<bool>("--allow-mismatch") { Description = "Accept a --cert not issued to ADDRESS" };
        var command = new Command("create", "Create a list with a new key pair and self-signed S/MIME certificate (or an imported one)")
        {
            address, mode, owner, keyType, cert, key, allowMismatch,
        };
        command.SetAction(parse => context.Run(() =>
        {
            ListMode listMode = ParseMode(parse.GetValue(mode));
            string? certFile = parse.GetValue(cert);
            string? keyFile = parse.GetValue(key);
            if ((certFile is null) != (keyFile is null))
            {
                throw new UsageException("--cert and --key go together");
            }

            if (!ListAdministration.TryParseKeyType(parse.GetValue(keyType), out ListKeyType type))
            {
                throw new UsageException($"--key-type '{parse.GetValue(keyType)}' is not one of rsa2048, rsa3072, rsa4096, p256, p384");
            }

            if (certFile is null && !Ascii.IsValid(parse.GetValue(address)!))
            {
                // The generated certificate names the list in an rfc822Name, an IA5String (RFC 5280 4.2.1.6).
                throw new UsageException($"list address '{parse.GetValue(address)}' is not ASCII; a list certificate can name only an ASCII address (use the domain's xn-- form)");
            }

            using AdminSession session = context.OpenSession(parse);
            MailingList created = certFile is null
                ? session.Administration.CreateList(parse.GetValue(address)!, listMode, parse.GetValue(owner), type)
                : session.Administration.ImportList(parse.GetValue(address)!, listMode, parse.GetValue(owner), certFile, keyFile!, parse.GetValue(allowMismatch));
            using X509Certificate2 current = session.Administration.GetCurrentCertificate(created.Address);
            context.Output.WriteLine($"created list {created.Address} ({MailingList.FormatMode(created.Mode)}), key {CertificateInspector.DescribeKey(current)}, certificate SHA-256 {CertificateInspector.Sha256Fingerprint(current)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Show(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var command = new Command("show", "Show a list: settings, options and keys (key files are checked)") { address };
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            MailingList list = session.Store.GetList(parse.GetValue(address)!);
            IReadOnlyDictionary<string, int> counts = session.Store.GetMemberCounts();
            var grid = new Grid().AddColumn().AddColumn();
            grid.AddRow("Address", AdminContext.Markup(list.Address));
            grid.AddRow("Mode", MailingList.FormatMode(list.Mode));
            grid.AddRow("Owner", AdminContext.Markup(list.Owner ?? "-"));
            grid.AddRow("Posting", MailingList.FormatPolicy(list.PostingPolicy));
            grid.AddRow("Members", counts.GetValueOrDefault(EmailAddress.Normalize(list.Address)).ToString(System.Globalization.CultureInfo.InvariantCulture));
            grid.AddRow("Options", list.Options.Count == 0 ? "(defaults)" : AdminContext.Markup(string.Join(", ", list.Options.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value}"))));
            context.Console.Write(grid);

            var table = new Table().AddColumns("Key", "State", "Algorithm", "Created", "Not after", "SHA-256 fingerprint");
            foreach (ListKeyRecord record in session.Store.GetListKeys(list.Address))
            {
                using X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(record.Certificate);
                string state = record.IsRetired ? "retired" : record.IsCurrent ? "current" : "active";
                table.AddRow(
                    record.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    state,
                    CertificateInspector.DescribeKey(certificate),
                    record.CreatedAt.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture),
                    certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
                    CertificateInspector.Sha256Fingerprint(certificate));
            }

            context.Console.Write(table);

            // Load every private key the way the daemon will: a bad mode or a missing file is an error now, not at the first post.
            foreach (ListKeyPair pair in session.Directory.GetListKeys(list.Address))
            {
                pair.Dispose();
            }

            context.Output.WriteLine("key files: ok");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Ls(AdminContext context)
    {
        var command = new Command("ls", "List all lists");
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            IReadOnlyDictionary<string, int> counts = session.Store.GetMemberCounts();
            var table = new Table().AddColumns("List", "Mode", "Posting", "Owner", "Members");
            foreach (MailingList list in session.Store.GetLists())
            {
                table.AddRow(
                    AdminContext.Markup(list.Address),
                    MailingList.FormatMode(list.Mode),
                    MailingList.FormatPolicy(list.PostingPolicy),
                    AdminContext.Markup(list.Owner ?? "-"),
                    counts.GetValueOrDefault(EmailAddress.Normalize(list.Address)).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            context.Console.Write(table);
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Delete(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var command = new Command("delete", "Delete a list, its members and its key files") { address };
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            string name = parse.GetValue(address)!;
            session.Administration.DeleteList(name);
            context.Output.WriteLine($"deleted list {name}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command ExportCert(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var command = new Command("export-cert", "Write the list's current certificate as PEM to stdout (what senders import)") { address };
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            using X509Certificate2 certificate = session.Administration.GetCurrentCertificate(parse.GetValue(address)!);
            context.Output.Write(CertificateInspector.ToPem(certificate));
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Rollover(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var keyType = new Option<string?>("--key-type") { Description = "Algorithm of the new key (default: the current key's)" };
        var command = new Command("rollover", "Make a new key current; older keys stay for decrypting posts already in flight") { address, keyType };
        command.SetAction(parse => context.Run(() =>
        {
            ListKeyType? type = null;
            if (parse.GetValue(keyType) is { } text)
            {
                type = ListAdministration.TryParseKeyType(text, out ListKeyType parsed)
                    ? parsed
                    : throw new UsageException($"--key-type '{text}' is not one of rsa2048, rsa3072, rsa4096, p256, p384");
            }

            using AdminSession session = context.OpenSession(parse);
            using X509Certificate2 certificate = session.Administration.Rollover(parse.GetValue(address)!, type);
            context.Output.WriteLine($"new current key for {parse.GetValue(address)}: {CertificateInspector.DescribeKey(certificate)}, SHA-256 {CertificateInspector.Sha256Fingerprint(certificate)}; publish it with list export-cert");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Set(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var option = new Option<string[]>("--option")
        {
            Description = $"Per-list policy KEY=VALUE (KEY= resets to the default); keys: {string.Join(", ", ListOptionKeys.Known)}",
            AllowMultipleArgumentsPerToken = false,
        };
        var policy = new Option<string?>("--policy") { Description = "Posting policy: open or members-only" };
        var owner = new Option<string?>("--owner") { Description = "List owner's address" };
        var mode = new Option<string?>("--mode") { Description = "rekey or double" };
        var command = new Command("set", "Change a list's posting policy, owner, mode or options") { address, option, policy, owner, mode };
        command.SetAction(parse => context.Run(() =>
        {
            PostingPolicy? posting = null;
            if (parse.GetValue(policy) is { } policyText)
            {
                posting = MailingList.TryParsePolicy(policyText, out PostingPolicy parsed)
                    ? parsed
                    : throw new UsageException($"--policy '{policyText}' is not one of open, members-only");
            }

            ListMode? listMode = parse.GetValue(mode) is { } modeText ? ParseMode(modeText) : null;
            using AdminSession session = context.OpenSession(parse);
            MailingList updated = session.Administration.SetList(parse.GetValue(address)!, listMode, parse.GetValue(owner), posting, parse.GetValue(option) ?? []);
            context.Output.WriteLine($"updated list {updated.Address}: mode {MailingList.FormatMode(updated.Mode)}, posting {MailingList.FormatPolicy(updated.PostingPolicy)}, options {(updated.Options.Count == 0 ? "(defaults)" : string.Join(", ", updated.Options.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value}")))}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static ListMode ParseMode(string? text) =>
        MailingList.TryParseMode(text, out ListMode mode) ? mode : throw new UsageException($"--mode '{text}' is not one of rekey, double");
}
