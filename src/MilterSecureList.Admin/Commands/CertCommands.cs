using System.CommandLine;
using System.Globalization;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using Spectre.Console;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist cert import|ls|accept|remove</c>: correspondents' certificates the gateway encrypts to.</summary>
public static class CertCommands
{
    public static Command Build(AdminContext context)
    {
        var cert = new Command("cert", "Correspondents' certificates (trust manual, ca-verified, harvested; pinning)");
        cert.Subcommands.Add(Import(context));
        cert.Subcommands.Add(Ls(context));
        cert.Subcommands.Add(Accept(context));
        cert.Subcommands.Add(Remove(context));
        return cert;
    }

    private static Argument<string> AddressArgument() => new("ADDRESS") { Description = "The correspondent's mail address" };

    private static Option<string?> FingerprintOption() => new("--fingerprint") { Description = "SHA-256 fingerprint (with or without colons)" };

    private static Command Import(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var file = new Argument<string>("FILE") { Description = "Certificate: PEM (further certificates are the chain), DER or PKCS#12" };
        var trust = new Option<string>("--trust") { Description = "manual (default) or ca-verified (must chain to [Gateway] TrustAnchors)", DefaultValueFactory = _ => "manual" };
        var noPin = new Option<bool>("--no-pin") { Description = "Do not pin: a later harvested certificate may replace it without operator approval" };
        var allowMismatch = new Option<bool>("--allow-mismatch") { Description = "Accept a certificate not issued to ADDRESS" };
        var command = new Command("import", "Import a correspondent's certificate (pinned unless --no-pin)") { address, file, trust, noPin, allowMismatch };
        command.SetAction(parse => context.Run(() =>
        {
            string trustText = parse.GetValue(trust)!;
            if (!GatewayNames.TryParse(trustText, out CertificateTrust level))
            {
                throw new UsageException($"--trust '{trustText}' is not one of manual, ca-verified");
            }

            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            using TrustAnchors anchors = level == CertificateTrust.CaVerified ? TrustAnchors.Load(session.Options.TrustAnchors) : new TrustAnchors([]);
            using var certificate = session.Administration.ImportCertificate(parse.GetValue(address)!, parse.GetValue(file)!, level, !parse.GetValue(noPin), parse.GetValue(allowMismatch), anchors);
            context.Output.WriteLine($"imported {GatewayNames.Format(level)} certificate {CertificateInspector.Sha256Fingerprint(certificate)} for {parse.GetValue(address)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Ls(AdminContext context)
    {
        var address = new Argument<string?>("ADDRESS") { Description = "Only this correspondent", Arity = ArgumentArity.ZeroOrOne };
        var pending = new Option<bool>("--pending") { Description = "Only certificates waiting for an operator (securelist cert accept)" };
        var command = new Command("ls", "List correspondents' certificates") { address, pending };
        command.SetAction(parse => context.Run(() =>
        {
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            DateTimeOffset now = context.Time.GetUtcNow();
            IReadOnlyList<CorrespondentCertificate> certificates = session.Store.GetCertificates(parse.GetValue(address))
                .Where(c => !parse.GetValue(pending) || c.State == CorrespondentState.Pending)
                .ToList();
            var table = new Table().AddColumns("Address", "Trust", "State", "Pinned", "Valid", "Not after", "Capabilities", "SHA-256");
            foreach (CorrespondentCertificate c in certificates)
            {
                table.AddRow(
                    AdminContext.Markup(c.Address),
                    GatewayNames.Format(c.Trust),
                    GatewayNames.Format(c.State),
                    c.Pinned ? "yes" : "no",
                    c.IsValidAt(now) ? "yes" : "no",
                    c.NotAfter.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                    c.Capabilities is null ? "-" : "known",
                    c.Fingerprint);
            }

            context.Console.Write(table);
            context.Output.WriteLine($"{certificates.Count} certificate(s)");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Accept(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        Option<string?> fingerprint = FingerprintOption();
        var command = new Command("accept", "Accept a pending (harvested) certificate: it replaces the pinned one") { address, fingerprint };
        command.SetAction(parse => context.Run(() =>
        {
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            string accepted = session.Store.Accept(parse.GetValue(address)!, parse.GetValue(fingerprint));
            context.Output.WriteLine($"accepted certificate {accepted} for {parse.GetValue(address)}; it is now pinned");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Remove(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        Option<string?> fingerprint = FingerprintOption();
        var command = new Command("remove", "Remove a correspondent's certificates (only one with --fingerprint)") { address, fingerprint };
        command.SetAction(parse => context.Run(() =>
        {
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            int removed = session.Store.RemoveCertificates(parse.GetValue(address)!, parse.GetValue(fingerprint));
            context.Output.WriteLine($"removed {removed} certificate(s) of {parse.GetValue(address)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }
}
