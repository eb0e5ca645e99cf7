using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Mime;
using CmsDoubleWrap = MilterSecureList.Cms.DoubleWrap;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist encrypt</c> (sender) and <c>securelist decrypt</c> (member) for double-wrap lists
/// (docs/double-wrap.md). Neither touches the directory: they run on the sender's and the member's machines.</summary>
public static class EncryptCommands
{
    /// <summary>Exit code of <c>decrypt</c> when the message opened but its signature is invalid.</summary>
    public const int ExitBadSignature = 3;

    public static IEnumerable<Command> Build(AdminContext context) => [Encrypt(context), Decrypt(context)];

    private static Command Encrypt(AdminContext context)
    {
        var to = new Option<string>("--to") { Description = "The list address", Required = true };
        var listKey = new Option<string>("--list-key") { Description = "The list key file (newest epoch you hold)", Required = true };
        var serverCert = new Option<string>("--server-cert") { Description = "The list server's certificate (securelist list export-cert)", Required = true };
        var input = new Option<string>("--in") { Description = "The message or MIME entity to send; - for standard input", Required = true };
        var output = new Option<string>("--out") { Description = "The S/MIME message to send to the list; - for standard output", Required = true };
        var signCert = new Option<string?>("--sign-cert") { Description = "Sign first with this certificate (opaque SignedData, SHA-256)" };
        var signKey = new Option<string?>("--sign-key") { Description = "The signing certificate's private key (PEM, mode 0600)" };
        var cbc = new Option<bool>("--cbc") { Description = "AES-256-CBC EnvelopedData instead of AES-256-GCM (no tamper detection)" };
        var command = new Command("encrypt", "Encrypt a post for a double-wrap list: the content key under the list key, that under the server's certificate")
        {
            to, listKey, serverCert, input, output, signCert, signKey, cbc,
        };
        command.SetAction(parse => context.Run(() =>
        {
            string? signCertPath = parse.GetValue(signCert);
            string? signKeyPath = parse.GetValue(signKey);
            if ((signCertPath is null) != (signKeyPath is null))
            {
                throw new UsageException("--sign-cert and --sign-key go together");
            }

            using ListKeyFile key = ListKeyFile.Load(parse.GetValue(listKey)!);
            string list = parse.GetValue(to)!;
            if (!string.Equals(key.List, list.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                throw new UsageException($"{parse.GetValue(listKey)} is the key of {key.List}, not {list}");
            }

            if (!File.Exists(parse.GetValue(serverCert)))
            {
                throw new UsageException($"{parse.GetValue(serverCert)}: no such certificate file");
            }

            using X509Certificate2 server = CertificateInspector.LoadFile(parse.GetValue(serverCert)!);
            byte[] message;
            using (Stream stream = MessageFiles.OpenInput(parse.GetValue(input)!))
            using (var copy = new MemoryStream())
            {
                stream.CopyTo(copy);
                message = copy.ToArray();
            }

            (byte[] entity, IReadOnlyList<MimeKit.Header> outerHeaders) = SmimeEntities.ExtractEntity(message);
            if (signCertPath is not null)
            {
                (X509Certificate2 certificate, AsymmetricAlgorithm privateKey) = ListKeyCommands.LoadIdentity(signCertPath, signKeyPath!);
                using (privateKey)
                using (X509Certificate2 signer = WithKey(certificate, privateKey))
                {
                    byte[] signedEntity = SmimeEntities.SignOpaque(entity, signer);
                    CryptographicOperations.ZeroMemory(entity);
                    entity = signedEntity;
                }
            }

            bool gcm = !parse.GetValue(cbc);
            byte[] cms = CmsDoubleWrap.Encrypt(entity, key.List, key.Epoch, key.Key, server, useGcm: gcm);
            CryptographicOperations.ZeroMemory(entity);
            using var result = new MemoryStream(SmimeEntities.WriteEncrypted(outerHeaders, cms, authEnveloped: gcm));
            MessageFiles.WriteOutput(parse.GetValue(output)!, result);
            if (parse.GetValue(output) != "-")
            {
                context.Output.WriteLine($"encrypted for {key.List} epoch {key.Epoch} ({(gcm ? "AES-256-GCM" : "AES-256-CBC")}{(signCertPath is null ? string.Empty : ", signed")}) to {parse.GetValue(output)}");
            }

            return AdminContext.ExitOk;
        }));
        return command;
    }

    internal static X509Certificate2 WithKey(X509Certificate2 certificate, AsymmetricAlgorithm key) => key switch
    {
        RSA rsa => certificate.CopyWithPrivateKey(rsa),
        ECDsa ecdsa => certificate.CopyWithPrivateKey(ecdsa),
        ECDiffieHellman ecdh => certificate.CopyWithPrivateKey(ToEcdsa(ecdh)),
        _ => throw new UsageException($"cannot sign with a {key.GetType().Name} key"),
    };

    private static ECDsa ToEcdsa(ECDiffieHellman ecdh)
    {
        ECParameters parameters = ecdh.ExportParameters(includePrivateParameters: true);
        try
        {
            return ECDsa.Create(parameters);
        }
        finally
        {
            if (parameters.D is not null)
            {
                CryptographicOperations.ZeroMemory(parameters.D);
            }
        }
    }

    private static Command Decrypt(AdminContext context)
    {
        var cert = new Option<string>("--cert") { Description = "Your certificate", Required = true };
        var key = new Option<string>("--key") { Description = "Your private key (PEM, mode 0600)", Required = true };
        var listKeys = new Option<string?>("--list-keys") { Description = "Your list-key directory (securelist listkey import --out)" };
        var input = new Option<string>("--in") { Description = "The message you received; - for standard input", Required = true };
        var output = new Option<string>("--out") { Description = "The decrypted entity; - for standard output", Required = true };
        var command = new Command("decrypt", "Open a double-wrapped or ordinary S/MIME message and check its signature (exit 3: invalid signature)")
        {
            cert, key, listKeys, input, output,
        };
        command.SetAction(parse => context.Run(() =>
        {
            (X509Certificate2 certificate, AsymmetricAlgorithm privateKey) = ListKeyCommands.LoadIdentity(parse.GetValue(cert)!, parse.GetValue(key)!);
            ListKeyDirectory? keys = parse.GetValue(listKeys) is { } dir ? new ListKeyDirectory(dir) : null;
            byte[] plain;
            using (privateKey)
            {
                byte[] cms;
                using (Stream stream = MessageFiles.OpenInput(parse.GetValue(input)!))
                {
                    cms = SmimeEntities.ReadEncryptedCms(stream);
                }

                var handedOut = new List<byte[]>();
                try
                {
                    plain = CmsDoubleWrap.Decrypt(cms, certificate, privateKey, id =>
                    {
                        byte[]? found = keys?.Find(id.ListId, id.Epoch);
                        if (found is not null)
                        {
                            handedOut.Add(found);
                        }

                        return found;
                    });
                }
                catch (CmsRewrapException e)
                {
                    context.Error.WriteLine($"securelist: cannot decrypt: {e.Message}");
                    return e.Reason is CmsRewrapFailure.NotForThisList ? AdminContext.ExitUsage : AdminContext.ExitFailure;
                }
                finally
                {
                    handedOut.ForEach(k => CryptographicOperations.ZeroMemory(k));
                }
            }

            (SignatureStatus status, string detail, byte[] content) = SmimeEntities.CheckSignature(plain);
            using (var buffer = new MemoryStream(content))
            {
                MessageFiles.WriteOutput(parse.GetValue(output)!, buffer);
            }

            CryptographicOperations.ZeroMemory(plain);
            CryptographicOperations.ZeroMemory(content);
            TextWriter statusWriter = parse.GetValue(output) == "-" ? context.Error : context.Output;
            statusWriter.WriteLine("signature: " + detail);
            return status == SignatureStatus.Invalid ? ExitBadSignature : AdminContext.ExitOk;
        }));
        return command;
    }
}
