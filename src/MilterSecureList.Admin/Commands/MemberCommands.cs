using System.CommandLine;
using System.Globalization;
using MilterSecureList.Directory;
using Spectre.Console;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist member add|remove|ls|set|import|export</c>.</summary>
public static class MemberCommands
{
    public static Command Build(AdminContext context)
    {
        var member = new Command("member", "Add, remove and inspect list members");
        member.Subcommands.Add(Add(context));
        member.Subcommands.Add(Remove(context));
        member.Subcommands.Add(Ls(context));
        member.Subcommands.Add(Set(context));
        member.Subcommands.Add(Import(context));
        member.Subcommands.Add(MemberExportCommand.Build(context));
        return member;
    }

    /// <summary>EX_NOUSER: Exim's ACL answers 550 5.1.1 for it.</summary>
    private const int ExitNoSuchList = 67;

    private static Argument<string> ListArgument() => new("LIST") { Description = "List address" };

    private static Argument<string> AddressArgument() => new("ADDRESS") { Description = "Member address (another list's address nests that list)" };

    private static Command Add(AdminContext context)
    {
        Argument<string> list = ListArgument();
        Argument<string> address = AddressArgument();
        var cert = new Option<string[]>("--cert") { Description = "Member certificate: PEM, DER or PKCS#12 (repeat for several)" };
        var oaep = new Option<bool>("--oaep") { Description = "Wrap the session key with RSAES-OAEP for this member" };
        var allowMismatch = new Option<bool>("--allow-mismatch") { Description = "Accept a certificate not issued to ADDRESS" };
        var password = new Option<string?>("--cert-password") { Description = "Password of a PKCS#12 --cert (only the certificate is kept, never the key)" };
        var command = new Command("add", "Add a member (or nest another list)") { list, address, cert, oaep, allowMismatch, password };
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            session.Administration.AddMember(parse.GetValue(list)!, parse.GetValue(address)!, parse.GetValue(cert) ?? [], parse.GetValue(oaep), parse.GetValue(allowMismatch), parse.GetValue(password));
            context.Output.WriteLine($"added {parse.GetValue(address)} to {parse.GetValue(list)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Remove(AdminContext context)
    {
        Argument<string> list = ListArgument();
        Argument<string> address = AddressArgument();
        // Double-wrap lists: rotation runs on the owner's machine (listkey rotate). These options remain only to refuse,
        // with the way to do it, what earlier versions did here: a list key must never reach the server host.
        var listKey = new Option<string?>("--list-key") { Hidden = true };
        var rotateOut = new Option<string?>("--rotate-out") { Hidden = true };
        var command = new Command("remove", "Remove a member (double-wrap lists: then rotate the list key on the owner's machine)") { list, address, listKey, rotateOut };
        command.SetAction(parse => context.Run(() =>
        {
            string listAddress = parse.GetValue(list)!;
            string removed = parse.GetValue(address)!;
            if (parse.GetValue(listKey) is not null || parse.GetValue(rotateOut) is not null)
            {
                throw new UsageException("member remove no longer rotates (the new list key would be made on the server host): remove here, "
                    + $"then on the owner's machine run securelist listkey rotate {listAddress} --remove {removed} with the member export");
            }

            using AdminSession session = context.OpenSession(parse);
            session.Administration.RemoveMember(listAddress, removed);
            context.Output.WriteLine($"removed {removed} from {listAddress}");
            if (session.Store.TryGetList(listAddress, out MailingList removedFrom) && removedFrom.Mode == ListMode.Double)
            {
                // Double-wrap (docs/double-wrap.md §4): the removed member still holds the list key.
                bool required = string.Equals(removedFrom.GetOption(ListOptionKeys.RotateOnRemove), "yes", StringComparison.OrdinalIgnoreCase);
                context.Error.WriteLine($"securelist: {listAddress} is a double-wrap list: {(required ? "rotation required (rotate-on-remove=yes)" : "rotate its list key")} "
                    + $"so {removed} cannot read later posts: securelist member export {listAddress} --out members.json here, then on the owner's machine "
                    + $"securelist listkey rotate {listAddress} --remove {removed} --list-key CURRENT.key --roster ROSTER --members members.json --sign-cert OWNER.pem --sign-key OWNER.key");
            }

            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Ls(AdminContext context)
    {
        Argument<string> list = ListArgument();
        var plain = new Option<bool>("--plain")
        {
            Description = "Print the deliverable members of the fully expanded list (nested lists resolved), one address per line; exit 67 if there is no such list (for Exim's router and ACL)",
        };
        var command = new Command("ls", "List a list's members with their certificate status") { list, plain };
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            string listAddress = parse.GetValue(list)!;
            if (parse.GetValue(plain))
            {
                if (!session.Directory.TryGetList(listAddress, out _))
                {
                    context.Error.WriteLine($"securelist: no list {listAddress} (exit {ExitNoSuchList})");
                    return ExitNoSuchList;
                }

                foreach (ExpandedMember m in session.Directory.Expand(listAddress).Members)
                {
                    if (m.DeliveryEnabled && m.Status == CertificateStatus.Usable)
                    {
                        context.Output.WriteLine(m.Address);
                    }
                }

                return AdminContext.ExitOk;
            }

            IReadOnlyList<ListMember> members = session.Administration.GetMembers(listAddress);
            DateTimeOffset now = context.Time.GetUtcNow();
            var table = new Table().AddColumns("Member", "Certificates", "Status", "Not after", "OAEP", "Delivery", "Self-copy");
            foreach (ListMember member in members)
            {
                string status;
                string notAfter = "-";
                if (session.Store.TryGetList(member.Address, out _))
                {
                    status = "nested list";
                }
                else if (member.Certificates.Count == 0)
                {
                    status = "missing";
                }
                else
                {
                    // Best certificate, as expansion picks it.
                    MemberCertificate best = member.BestCertificate(now, out CertificateCheck check)!;
                    status = check.IsUsable ? "usable" : $"{check.Status.ToString().ToLowerInvariant()}: {check.Problem}";
                    DateTimeOffset bestNotAfter = best.NotAfter;
                    notAfter = bestNotAfter.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
                }

                table.AddRow(
                    AdminContext.Markup(member.Address),
                    member.Certificates.Count.ToString(CultureInfo.InvariantCulture),
                    AdminContext.Markup(status),
                    notAfter,
                    member.UseOaep ? "yes" : "no",
                    member.DeliveryEnabled ? "on" : "off",
                    member.SelfCopy is { } s ? (s ? "yes" : "no") : "list default");
            }

            context.Console.Write(table);
            context.Output.WriteLine($"{members.Count} member(s)");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Set(AdminContext context)
    {
        Argument<string> list = ListArgument();
        Argument<string> address = AddressArgument();
        var oaep = new Option<bool>("--oaep") { Description = "Use RSAES-OAEP for this member" };
        var noOaep = new Option<bool>("--no-oaep") { Description = "Use PKCS#1 v1.5 for this member" };
        var delivery = new Option<string?>("--delivery") { Description = "on or off (off: still a member, gets no copies)" };
        var addCert = new Option<string[]>("--add-cert") { Description = "Add another certificate (e.g. a renewed one)" };
        var allowMismatch = new Option<bool>("--allow-mismatch") { Description = "Accept a certificate not issued to ADDRESS" };
        var command = new Command("set", "Change a member's options") { list, address, oaep, noOaep, delivery, addCert, allowMismatch };
        command.SetAction(parse => context.Run(() =>
        {
            if (parse.GetValue(oaep) && parse.GetValue(noOaep))
            {
                throw new UsageException("--oaep and --no-oaep exclude each other");
            }

            bool? useOaep = parse.GetValue(oaep) ? true : parse.GetValue(noOaep) ? false : null;
            bool? deliver = parse.GetValue(delivery)?.Trim().ToLowerInvariant() switch
            {
                null => null,
                "on" => true,
                "off" => false,
                string other => throw new UsageException($"--delivery '{other}' is not one of on, off"),
            };
            string[] certificates = parse.GetValue(addCert) ?? [];
            if (useOaep is null && deliver is null && certificates.Length == 0)
            {
                throw new UsageException("nothing to change: give --oaep, --no-oaep, --delivery or --add-cert");
            }

            using AdminSession session = context.OpenSession(parse);
            session.Administration.SetMember(parse.GetValue(list)!, parse.GetValue(address)!, useOaep, deliver, certificates, parse.GetValue(allowMismatch));
            context.Output.WriteLine($"updated {parse.GetValue(address)} on {parse.GetValue(list)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Import(AdminContext context)
    {
        Argument<string> list = ListArgument();
        var dir = new Option<string?>("--dir") { Description = "Directory of certificate files (address = file name stem, else the certificate's)" };
        var csv = new Option<string?>("--csv") { Description = "CSV file: address,certificate-file[,oaep]" };
        var allowMismatch = new Option<bool>("--allow-mismatch") { Description = "Accept certificates not issued to the entry's address" };
        var command = new Command("import", "Bulk-load members; prints accepted and refused entries with reasons") { list, dir, csv, allowMismatch };
        command.SetAction(parse => context.Run(() =>
        {
            string? directory = parse.GetValue(dir);
            string? csvFile = parse.GetValue(csv);
            if ((directory is null) == (csvFile is null))
            {
                throw new UsageException("give exactly one of --dir DIR or --csv FILE");
            }

            IReadOnlyList<MemberImportEntry> entries = directory is not null
                ? ListAdministration.ReadImportDirectory(directory)
                : ListAdministration.ReadImportCsv(csvFile!);
            using AdminSession session = context.OpenSession(parse);
            string listAddress = parse.GetValue(list)!;
            bool mismatch = parse.GetValue(allowMismatch);
            ImportSummary summary;
            if (context.ErrorConsole.Profile.Capabilities.Interactive && !System.Console.IsErrorRedirected)
            {
                // A bar only on a terminal: piped or captured output gets the summary and nothing else.
                summary = null!;
                context.ErrorConsole.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(progress =>
                    {
                        ProgressTask checking = progress.AddTask("checking certificates", maxValue: Math.Max(1, entries.Count));
                        ProgressTask storing = progress.AddTask("storing members", autoStart: false, maxValue: 1);
                        summary = session.Administration.ImportMembers(listAddress, entries, mismatch, step =>
                        {
                            ProgressTask task = step.Phase == ImportPhase.Checking ? checking : storing;
                            if (!task.IsStarted)
                            {
                                task.StartTask();
                            }

                            task.MaxValue = Math.Max(1, step.Total);
                            task.Value = step.Done;
                        });
                        checking.Value = checking.MaxValue;
                        storing.Value = storing.MaxValue;
                    });
            }
            else
            {
                summary = session.Administration.ImportMembers(listAddress, entries, mismatch);
            }

            if (summary.Refused.Count > 0)
            {
                var table = new Table().AddColumns("Refused entry", "Address", "Reason");
                foreach (ImportRefusal refusal in summary.Refused)
                {
                    table.AddRow(AdminContext.Markup(refusal.Source), AdminContext.Markup(refusal.Address ?? "-"), AdminContext.Markup(refusal.Reason));
                }

                context.Console.Write(table);
            }

            context.Output.WriteLine($"imported into {listAddress}: {summary.Accepted.Count} accepted, {summary.Refused.Count} refused");
            return summary.Accepted.Count == 0 && summary.Refused.Count > 0 ? AdminContext.ExitUsage : AdminContext.ExitOk;
        }));
        return command;
    }
}
