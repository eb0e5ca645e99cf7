using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;
using Spectre.Console;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist user add|import|ls|remove|export-cert</c>: the gateway's local users and their key pairs.</summary>
public static class UserCommands
{
    public static Command Build(AdminContext context)
    {
        var user = new Command("user", "Gateway users: local addresses the milter signs and decrypts for");
        user.Subcommands.Add(Add(context));
        user.Subcommands.Add(Import(context));
        user.Subcommands.Add(Ls(context));
        user.Subcommands.Add(Remove(context));
        user.Subcommands.Add(ExportCert(context));
        return user;
    }

    private static Argument<string> AddressArgument() => new("ADDRESS") { Description = "The user's mail address" };

    /// <summary>--encrypt, --sign, --opaque: the per-user policy overrides of [Gateway] defaults.</summary>
    private sealed class PolicyOptions
    {
        public Option<string?> Encrypt { get; } = new("--encrypt") { Description = "Outbound encryption: required, opportunistic or never (default: [Gateway] Encrypt)" };

        public Option<string?> Sign { get; } = new("--sign") { Description = "Outbound signing: always or never (default: [Gateway] Sign)" };

        public Option<bool?> Opaque { get; } = new("--opaque") { Description = "Sign opaque (application/pkcs7-mime) instead of multipart/signed" };

        public void AddTo(Command command)
        {
            command.Options.Add(Encrypt);
            command.Options.Add(Sign);
            command.Options.Add(Opaque);
        }

        public (EncryptPolicy? Encrypt, SignPolicy? Sign, bool? Opaque) Read(ParseResult parse)
        {
            EncryptPolicy? encrypt = parse.GetValue(Encrypt) is { } e
                ? GatewayNames.TryParse(e, out EncryptPolicy ep) ? ep : throw new UsageException($"--encrypt '{e}' is not one of required, opportunistic, never")
                : null;
            SignPolicy? sign = parse.GetValue(Sign) is { } s
                ? GatewayNames.TryParse(s, out SignPolicy sp) ? sp : throw new UsageException($"--sign '{s}' is not one of always, never")
                : null;
            return (encrypt, sign, parse.GetValue(Opaque));
        }
    }

    private static Command Add(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var generate = new Option<bool>("--generate") { Description = "Make a key pair and a certificate from the local CA ([Gateway] CaCertificate, CaKey)" };
        var csr = new Option<string?>("--csr") { Description = "Make a key pair and write a certificate signing request for an external CA to this file" };
        var keyType = new Option<string>("--key-type") { Description = "rsa3072 (default), rsa2048, rsa4096, p256 or p384 (EC: ECDSA signatures, ECDH decryption)", DefaultValueFactory = _ => "rsa3072" };
        var policy = new PolicyOptions();
        var command = new Command("add", "Create a gateway user with a new key pair (--generate or --csr FILE)") { address, generate, csr, keyType };
        policy.AddTo(command);
        command.SetAction(parse => context.Run(() =>
        {
            string? csrFile = parse.GetValue(csr);
            if (parse.GetValue(generate) == (csrFile is not null))
            {
                throw new UsageException("give exactly one of --generate or --csr FILE (to import an existing key pair use securelist user import)");
            }

            if (!ListAdministration.TryParseKeyType(parse.GetValue(keyType), out ListKeyType type))
            {
                throw new UsageException($"--key-type '{parse.GetValue(keyType)}' is not one of rsa3072, rsa2048, rsa4096, p256, p384");
            }

            (EncryptPolicy? encrypt, SignPolicy? sign, bool? opaque) = policy.Read(parse);
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            string user = parse.GetValue(address)!;
            if (csrFile is not null)
            {
                if (File.Exists(csrFile))
                {
                    throw new UsageException($"{csrFile} exists; choose a new file for the request");
                }

                string request = session.Administration.AddWithRequest(user, encrypt, sign, opaque, type);
                File.WriteAllText(csrFile, request + "\n");
                context.Output.WriteLine($"added gateway user {user} without a certificate; request in {csrFile}: import the CA's answer with securelist user import {user} --signed CERT");
                return AdminContext.ExitOk;
            }

            if (session.Options.CaCertificate is null || session.Options.CaKey is null)
            {
                throw new UsageException("--generate needs a local CA: set [Gateway] CaCertificate and CaKey");
            }

            using X509Certificate2 certificate = session.Administration.AddGenerated(user, new LocalCa(session.Options.CaCertificate, session.Options.CaKey, session.Options.CaValidityDays), encrypt, sign, opaque, type);
            context.Output.WriteLine($"added gateway user {user}: certificate {CertificateInspector.Sha256Fingerprint(certificate)} valid until {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Import(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var cert = new Option<string?>("--cert") { Description = "PKCS#12 file (with --password), or PEM certificate(s) with --key" };
        var key = new Option<string?>("--key") { Description = "PEM private key of a PEM --cert (must be 0600)" };
        var password = new Option<string?>("--password") { Description = "Password of the PKCS#12 file" };
        var passphraseFile = new Option<string?>("--passphrase-file") { Description = "File (0600) with the passphrase of an encrypted PEM --key" };
        var signed = new Option<string?>("--signed") { Description = "The certificate an external CA issued for a user added with --csr" };
        var allowMismatch = new Option<bool>("--allow-mismatch") { Description = "Accept a certificate not issued to ADDRESS" };
        var policy = new PolicyOptions();
        var command = new Command("import", "Import a user's key pair (PKCS#12 or PEM), or the CA's answer to a request") { address, cert, key, password, passphraseFile, signed, allowMismatch };
        policy.AddTo(command);
        command.SetAction(parse => context.Run(() =>
        {
            string user = parse.GetValue(address)!;
            string? certificateFile = parse.GetValue(cert);
            string? signedFile = parse.GetValue(signed);
            if ((certificateFile is null) == (signedFile is null))
            {
                throw new UsageException("give exactly one of --cert FILE or --signed FILE");
            }

            (EncryptPolicy? encrypt, SignPolicy? sign, bool? opaque) = policy.Read(parse);
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            using X509Certificate2 certificate = signedFile is not null
                ? session.Administration.CompleteRequest(user, signedFile, parse.GetValue(allowMismatch))
                : session.Administration.Import(user, certificateFile!, parse.GetValue(key), parse.GetValue(password), parse.GetValue(allowMismatch), encrypt, sign, opaque, parse.GetValue(passphraseFile));
            context.Output.WriteLine($"imported gateway user {user}: certificate {CertificateInspector.Sha256Fingerprint(certificate)} valid until {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Ls(AdminContext context)
    {
        var command = new Command("ls", "List gateway users with certificate status and policy");
        command.SetAction(parse => context.Run(() =>
        {
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            DateTimeOffset now = context.Time.GetUtcNow();
            var table = new Table().AddColumns("User", "Certificate", "Not after", "Encrypt", "Sign", "Form");
            IReadOnlyList<GatewayUser> users = session.Store.GetUsers();
            foreach (GatewayUser user in users)
            {
                string status = "awaiting CA (--csr)";
                string notAfter = "-";
                if (user.CertificateDer is { } der)
                {
                    using X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(der);
                    CertificateCheck check = CertificateInspector.Check(certificate, now);
                    status = check.IsUsable ? "usable" : $"{check.Status.ToString().ToLowerInvariant()}: {check.Problem}";
                    notAfter = certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
                }

                table.AddRow(
                    AdminContext.Markup(user.Address),
                    AdminContext.Markup(status),
                    notAfter,
                    user.Encrypt is { } e ? GatewayNames.Format(e) : "default",
                    user.Sign is { } s ? GatewayNames.Format(s) : "default",
                    user.Opaque is { } o ? (o ? "opaque" : "multipart") : "default");
            }

            context.Console.Write(table);
            context.Output.WriteLine($"{users.Count} user(s)");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Remove(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var command = new Command("remove", "Remove a gateway user and delete its private key file") { address };
        command.SetAction(parse => context.Run(() =>
        {
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            session.Administration.RemoveUser(parse.GetValue(address)!);
            context.Output.WriteLine($"removed gateway user {parse.GetValue(address)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command ExportCert(AdminContext context)
    {
        Argument<string> address = AddressArgument();
        var command = new Command("export-cert", "Print the user's certificate and chain as PEM (never the key)") { address };
        command.SetAction(parse => context.Run(() =>
        {
            using GatewayAdminSession session = GatewayAdminSession.Open(context, parse);
            context.Output.Write(session.Administration.ExportCertificate(parse.GetValue(address)!));
            return AdminContext.ExitOk;
        }));
        return command;
    }
}
