using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Mime;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist smime rewrap</c>: the re-key engine on one message file, for operators and tests.
/// Exit 0 re-keyed; 2 for input the tool cannot handle: not S/MIME, malformed MIME or CMS, an unsupported algorithm, not
/// encrypted to this list, a certificate unfit for its job (one-line reason); 1 for failures on our side.</summary>
public static class SmimeCommands
{
    public static Command Build(AdminContext context)
    {
        var smime = new Command("smime", "Work on S/MIME messages directly, without the directory");
        smime.Subcommands.Add(Rewrap(context));
        return smime;
    }

    private static Command Rewrap(AdminContext context)
    {
        var listCert = new Option<string>("--list-cert") { Description = "The list certificate (PEM or DER)", Required = true };
        var listKey = new Option<string>("--list-key") { Description = "The list private key (PKCS#8 PEM, mode 0600)", Required = true };
        var members = new Option<string[]>("--member") { Description = "A member certificate (repeat for each member)", Required = true };
        var oaep = new Option<bool>("--oaep") { Description = "Wrap for RSA members with RSAES-OAEP-SHA256 instead of PKCS#1 v1.5" };
        var input = new Option<string>("--in") { Description = "The message (RFC 5322); - for standard input", Required = true };
        var output = new Option<string>("--out") { Description = "Where to write the re-keyed message; - for standard output", Required = true };
        var command = new Command("rewrap", "Re-wrap the session key of an S/MIME message for the given members; the body stays byte for byte")
        {
            listCert, listKey, members, oaep, input, output,
        };
        command.SetAction(parse => context.Run(() =>
        {
            X509Certificate2 cert = CertificateInspector.LoadFile(parse.GetValue(listCert)!);
            string keyPath = parse.GetValue(listKey)!;
            ListKeyStore.CheckPrivateFile(keyPath);
            using ListKey key = LoadListKey(cert, keyPath);
            var recipients = parse.GetValue(members)!
                .Select(path => CmsRecipient.FromCertificate(CertificateInspector.LoadFile(path), parse.GetValue(oaep)))
                .ToList();

            int wrapped = 0;
            try
            {
                using Stream inStream = MessageFiles.OpenInput(parse.GetValue(input)!);
                using var buffer = new MemoryStream();
                SmimeBodyRewriter.Rewrite(inStream, buffer, cms =>
                {
                    RewrapResult result = SessionKeyRewrapper.Rewrap(cms, [key], recipients);
                    wrapped = result.MembersWrapped;
                    return result.ContentInfo;
                });

                // Written only when complete: never a half-written message.
                MessageFiles.WriteOutput(parse.GetValue(output)!, buffer);
            }
            catch (MimeFormatException e)
            {
                context.Error.WriteLine($"securelist: {e.Message}");
                return AdminContext.ExitUsage;
            }
            catch (CmsRewrapException e) when (e.Reason is not (CmsRewrapFailure.InvalidArgument or CmsRewrapFailure.DecryptionFailed))
            {
                // Malformed, UnsupportedAlgorithm, LimitExceeded, NotForThisList, NotEnvelopedData: the message's fault.
                context.Error.WriteLine($"securelist: {e.Message}");
                return AdminContext.ExitUsage;
            }
            catch (CmsRewrapException e)
            {
                // The engine translates every decoding failure at its ASN.1 boundary; what is left is ours (exit 1).
                context.Error.WriteLine($"securelist: {e.Message}");
                return AdminContext.ExitFailure;
            }

            if (parse.GetValue(output) != "-")
            {
                context.Output.WriteLine($"re-keyed for {wrapped} member(s)");
            }

            return AdminContext.ExitOk;
        }));
        return command;
    }

    /// <summary>A list certificate whose keyUsage forbids its job is the operator's input, said as such (exit 2).</summary>
    private static ListKey LoadListKey(X509Certificate2 cert, string keyPath)
    {
        try
        {
            ListKey.RequireKeyUsage(cert);
        }
        catch (CmsRewrapException e)
        {
            throw new UsageException(e.Message);
        }

        return new ListKey(cert, ListKeyStore.LoadPrivateKey(keyPath, cert, () => null));
    }
}
