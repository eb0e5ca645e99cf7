using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Directory;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist listkey roster accept|remove|check</c>: the owner's pinned member certificates
/// (docs/double-wrap.md §3.1). A certificate gets a list key only after the owner accepted it here, from the member's
/// own file or by a fingerprint the member told the owner; the server's directory only proposes.</summary>
public static class RosterCommands
{
    public static Command Build(AdminContext context)
    {
        var roster = new Command("roster", "The member certificates you (the list owner) accepted: only these get list keys");
        roster.Subcommands.Add(Accept(context));
        roster.Subcommands.Add(Remove(context));
        roster.Subcommands.Add(Check(context));
        return roster;
    }

    internal static Option<string> RosterOption() =>
        new("--roster") { Description = "Your roster file (kept on your machine, mode 0600; created by the first accept)", Required = true };

    private static Command Accept(AdminContext context)
    {
        var list = new Argument<string>("LIST") { Description = "List address" };
        var address = new Argument<string>("ADDRESS") { Description = "Member address" };
        Option<string> rosterFile = RosterOption();
        var cert = new Option<string?>("--cert") { Description = "The member's certificate file, got from the member" };
        var members = new Option<string?>("--members") { Description = "A member export (securelist member export) holding the certificate" };
        var fingerprint = new Option<string?>("--fingerprint") { Description = "With --members: the SHA-256 fingerprint the member told you" };
        var allowMismatch = new Option<bool>("--allow-mismatch") { Description = "Accept a certificate not issued to ADDRESS" };
        var command = new Command("accept", "Pin a member's certificate in your roster") { list, address, rosterFile, cert, members, fingerprint, allowMismatch };
        command.SetAction(parse => context.Run(() =>
        {
            string member = parse.GetValue(address)!;
            X509Certificate2 certificate = FindCertificate(parse.GetValue(cert), parse.GetValue(members), parse.GetValue(fingerprint), member);
            try
            {
                CertificateInspector.RequireAcceptable(certificate, member, parse.GetValue(allowMismatch), context.Time.GetUtcNow(), parse.GetValue(cert) ?? "the certificate");
            }
            catch (DirectoryException e)
            {
                throw new UsageException(e.Message);
            }

            string path = parse.GetValue(rosterFile)!;
            MemberRoster roster = MemberRoster.Load(path, parse.GetValue(list)!, create: true);
            bool added = roster.Accept(member, certificate);
            roster.Save(path);
            context.Output.WriteLine($"{(added ? "pinned" : "already pinned")} for {member} in {path}: {Describe(certificate)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    /// <summary>The certificate to pin: the member's own file, or the export's certificate with the fingerprint the
    /// member gave (so the server's copy is used only when it is byte for byte the one the member vouched for).</summary>
    private static X509Certificate2 FindCertificate(string? certFile, string? membersFile, string? fingerprint, string member)
    {
        if (certFile is not null)
        {
            if (membersFile is not null || fingerprint is not null)
            {
                throw new UsageException("--cert excludes --members and --fingerprint");
            }

            return File.Exists(certFile) ? CertificateInspector.LoadFile(certFile) : throw new UsageException($"{certFile}: no such certificate file");
        }

        if (membersFile is null || fingerprint is null)
        {
            throw new UsageException("give --cert FILE, or --members EXPORT with --fingerprint SHA256");
        }

        MemberExport export = MemberExport.Load(membersFile);
        return export.Members
            .Where(m => EmailAddress.Comparer.Equals(m.Address, member))
            .SelectMany(m => m.Certificates)
            .FirstOrDefault(c => MemberRoster.FingerprintMatches(c, fingerprint))
            ?? throw new UsageException($"{membersFile} has no certificate of {member} with SHA-256 fingerprint {fingerprint}: nothing pinned");
    }

    private static Command Remove(AdminContext context)
    {
        var list = new Argument<string>("LIST") { Description = "List address" };
        var address = new Argument<string>("ADDRESS") { Description = "Member address" };
        Option<string> rosterFile = RosterOption();
        var fingerprint = new Option<string?>("--fingerprint") { Description = "Unpin only this certificate (default: the member)" };
        var command = new Command("remove", "Unpin a member (or one certificate): no more list keys for it") { list, address, rosterFile, fingerprint };
        command.SetAction(parse => context.Run(() =>
        {
            string path = parse.GetValue(rosterFile)!;
            MemberRoster roster = MemberRoster.Load(path, parse.GetValue(list)!, create: false);
            int removed = roster.Remove(parse.GetValue(address)!, parse.GetValue(fingerprint));
            if (removed == 0)
            {
                throw new UsageException($"{path} pins no such certificate of {parse.GetValue(address)}");
            }

            roster.Save(path);
            context.Output.WriteLine($"unpinned {removed} certificate(s) of {parse.GetValue(address)} from {path}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Check(AdminContext context)
    {
        var list = new Argument<string>("LIST") { Description = "List address" };
        Option<string> rosterFile = RosterOption();
        var members = new Option<string?>("--members") { Description = "A member export to compare (securelist member export on the server)" };
        var command = new Command("check", "Show your pinned certificates and, with --members, what the server's export adds that you have not accepted (exit 3)")
        {
            list, rosterFile, members,
        };
        command.SetAction(parse => context.Run(() =>
        {
            string path = parse.GetValue(rosterFile)!;
            MemberRoster roster = MemberRoster.Load(path, parse.GetValue(list)!, create: false);
            foreach (string member in roster.Members)
            {
                foreach (X509Certificate2 pin in roster.PinnedFor(member))
                {
                    context.Output.WriteLine($"pinned   {member}: {Describe(pin)}");
                }
            }

            if (parse.GetValue(members) is not { } exportFile)
            {
                return AdminContext.ExitOk;
            }

            DistributionPlan plan = roster.Plan(MemberExport.Load(exportFile), context.Time.GetUtcNow());
            foreach (KeyRecipient recipient in plan.Recipients)
            {
                context.Output.WriteLine($"ok       {recipient.Address}: key messages go to SHA-256 {CertificateInspector.Sha256Fingerprint(recipient.Certificate)}");
            }

            foreach (Refusal refusal in plan.Refused)
            {
                context.Output.WriteLine("REFUSED  " + Describe(refusal, roster.List, path, exportFile));
            }

            foreach (string absent in plan.PinnedNotMembers)
            {
                context.Output.WriteLine($"absent   {absent}: pinned but not a member in {exportFile}");
            }

            return plan.Refused.Count == 0 ? AdminContext.ExitOk : ListKeyCommands.ExitRefused;
        }));
        return command;
    }

    /// <summary>Subject, mail addresses, SHA-256 fingerprint and expiry: what the owner compares with the member.</summary>
    internal static string Describe(X509Certificate2 certificate) =>
        $"{certificate.Subject} <{string.Join(", ", CertificateInspector.GetEmailAddresses(certificate))}>, SHA-256 {CertificateInspector.Sha256Fingerprint(certificate)}, "
        + $"not after {certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}";

    /// <summary>One line: who, why, and for a certificate the command that accepts it once the member confirms it.</summary>
    internal static string Describe(Refusal refusal, string list, string rosterPath, string membersPath) =>
        refusal.Certificate is null
            ? $"{refusal.Address}: {refusal.Reason}"
            : $"{refusal.Address}: {refusal.Reason}: {Describe(refusal.Certificate)}; only if {refusal.Address} confirms this fingerprint: "
              + $"securelist listkey roster accept {list} {refusal.Address} --roster {rosterPath} --members {membersPath} --fingerprint {CertificateInspector.Sha256Fingerprint(refusal.Certificate)}";
}

/// <summary>The options every owner-side distribution verb takes: roster, member export, and the owner's signing
/// identity. No --config: these verbs never open the directory.</summary>
internal sealed class OwnerOptions
{
    public Option<string> Roster { get; } = RosterCommands.RosterOption();

    public Option<string> Members { get; } = new("--members")
    {
        Description = "The member export from the server (securelist member export LIST --out FILE): who is a member",
        Required = true,
    };

    public Option<string> SignCert { get; } = new("--sign-cert") { Description = "Your (the owner's) certificate: members pin it", Required = true };

    public Option<string> SignKey { get; } = new("--sign-key") { Description = "Your private key (PEM, mode 0600)", Required = true };

    public OwnerSide Open(ParseResult parse, string list)
    {
        string rosterPath = parse.GetValue(Roster)!;
        string membersPath = parse.GetValue(Members)!;
        MemberRoster roster = MemberRoster.Load(rosterPath, list, create: false);
        MemberExport export = MemberExport.Load(membersPath);
        roster.RequireSameList(export.List, membersPath);
        (X509Certificate2 certificate, AsymmetricAlgorithm key) = ListKeyCommands.LoadIdentity(parse.GetValue(SignCert)!, parse.GetValue(SignKey)!);
        using (key)
        {
            return new OwnerSide(roster, rosterPath, export, membersPath, EncryptCommands.WithKey(certificate, key));
        }
    }
}

/// <summary>Roster, export and signer loaded for one owner-side verb.</summary>
internal sealed record OwnerSide(MemberRoster Roster, string RosterPath, MemberExport Export, string MembersPath, X509Certificate2 Signer) : IDisposable
{
    public void Dispose() => Signer.Dispose();
}
