using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.Mime;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist listkey new|distribute|import</c>: the double-wrap list keys (docs/double-wrap.md §4).
/// They belong to the list owner and the members; the server's directory and key directory never see them.</summary>
public static class ListKeyCommands
{
    public static Command Build(AdminContext context)
    {
        var listkey = new Command("listkey", "Make, distribute and import the list keys of double-wrap lists (never stored by the server)");
        listkey.Subcommands.Add(New(context));
        listkey.Subcommands.Add(Distribute(context));
        listkey.Subcommands.Add(Import(context));
        return listkey;
    }

    /// <summary>Epoch when neither --epoch nor --previous is given: seconds since the Unix epoch, so keys made later
    /// get larger epochs without any state (two keys made within one second need --previous or --epoch).</summary>
    internal static long EpochFromTime(TimeProvider time) => time.GetUtcNow().ToUnixTimeSeconds();

    private static Command New(AdminContext context)
    {
        var list = new Argument<string>("LIST") { Description = "List address" };
        var output = new Option<string>("--out") { Description = "The new key file (created with mode 0600; never overwritten)", Required = true };
        var previous = new Option<string?>("--previous") { Description = "The current key file: the new epoch is its epoch + 1" };
        var epoch = new Option<long?>("--epoch") { Description = "The epoch to use (default: --previous + 1, else seconds since 1970)" };
        var command = new Command("new", "Make a new epoch's 32-byte list key (owner side)") { list, output, previous, epoch };
        command.SetAction(parse => context.Run(() =>
        {
            string address = parse.GetValue(list)!;
            long next = NextEpoch(context, address, parse.GetValue(previous), parse.GetValue(epoch));
            using ListKeyFile key = ListKeyFile.Create(address, next);
            key.Save(parse.GetValue(output)!);
            context.Output.WriteLine($"list key for {key.List} epoch {key.Epoch} written to {parse.GetValue(output)}");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    internal static long NextEpoch(AdminContext context, string list, string? previousFile, long? epoch)
    {
        if (previousFile is not null && epoch is not null)
        {
            throw new UsageException("--previous and --epoch exclude each other");
        }

        if (epoch is { } explicitEpoch)
        {
            return explicitEpoch >= 0 ? explicitEpoch : throw new UsageException("--epoch must not be negative");
        }

        if (previousFile is null)
        {
            return EpochFromTime(context.Time);
        }

        using ListKeyFile previous = ListKeyFile.Load(previousFile);
        if (!string.Equals(previous.List, list.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"{previousFile} is the key of {previous.List}, not {list}");
        }

        return checked(previous.Epoch + 1);
    }

    private static Command Distribute(AdminContext context)
    {
        var list = new Argument<string>("LIST") { Description = "List address" };
        var key = new Option<string>("--list-key") { Description = "The list key file to distribute", Required = true };
        var output = new Option<string>("--out") { Description = "Directory for the messages (one MEMBER.eml per member)", Required = true };
        var command = new Command("distribute", "Write, for each current member, an S/MIME message carrying the list key, encrypted to that member's certificate")
        {
            list, key, output,
        };
        command.SetAction(parse => context.Run(() =>
        {
            using ListKeyFile listKey = ListKeyFile.Load(parse.GetValue(key)!);
            string address = parse.GetValue(list)!;
            if (!string.Equals(listKey.List, address.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                throw new UsageException($"{parse.GetValue(key)} is the key of {listKey.List}, not {address}");
            }

            using AdminSession session = context.OpenSession(parse);
            IReadOnlyList<string> written = DistributeTo(context, session, listKey, parse.GetValue(output)!);
            context.Output.WriteLine($"{written.Count} message(s) for {listKey.List} epoch {listKey.Epoch} in {parse.GetValue(output)}; send them, e.g. sendmail -t < FILE");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    /// <summary>Writes one message per deliverable member of the expanded list; members without a usable certificate
    /// are reported on stderr (they cannot get the key). Returns the files written.</summary>
    internal static IReadOnlyList<string> DistributeTo(AdminContext context, AdminSession session, ListKeyFile listKey, string outDir)
    {
        if (!session.Directory.TryGetList(listKey.List, out MailingList? mailingList))
        {
            throw new UsageException($"no list {listKey.List}");
        }

        if (mailingList.Mode != ListMode.Double)
        {
            context.Error.WriteLine($"securelist: warning: {listKey.List} is a re-key list; its list key is not used by the server");
        }

        System.IO.Directory.CreateDirectory(outDir);
        string from = mailingList.Owner ?? listKey.List;
        var written = new List<string>();
        foreach (ExpandedMember member in session.Directory.Expand(listKey.List).Members)
        {
            if (member.Certificate is null || member.Status != CertificateStatus.Usable)
            {
                context.Error.WriteLine($"securelist: {member.Address} has no usable certificate ({member.Problem ?? member.Status.ToString()}): no key message written");
                continue;
            }

            byte[] message = BuildKeyMessage(listKey, from, member.Address, member.Certificate);
            string file = Path.Combine(outDir, SafeFileName(member.Address) + ".eml");
            File.WriteAllBytes(file, message);
            written.Add(file);
        }

        return written;
    }

    /// <summary>Rotation on member removal (list option rotate-on-remove=yes): makes epoch n+1 from the owner's current
    /// key file, writes it to <c>OUTDIR/LIST.EPOCH.key</c> (0600) and the key messages for the remaining members to
    /// <c>OUTDIR/LIST.EPOCH.messages/MEMBER.eml</c>. Nothing goes to the server's directory or key directory.</summary>
    internal static (string KeyFile, string MessageDir, int Messages) Rotate(AdminContext context, AdminSession session, string currentKeyFile, string outDir)
    {
        using ListKeyFile current = ListKeyFile.Load(currentKeyFile);
        using ListKeyFile next = ListKeyFile.Create(current.List, checked(current.Epoch + 1));
        System.IO.Directory.CreateDirectory(outDir);
        string keyFile = Path.Combine(outDir, ListKeyDirectory.FileName(next.List, next.Epoch));
        next.Save(keyFile);
        string messageDir = Path.Combine(outDir, Path.GetFileNameWithoutExtension(keyFile) + ".messages");
        IReadOnlyList<string> written = DistributeTo(context, session, next, messageDir);
        return (keyFile, messageDir, written.Count);
    }

    /// <summary>An ordinary S/MIME message (RFC 5322 + RFC 8551 enveloped-data) whose content is the key file as a
    /// text/plain attachment: any S/MIME client, or openssl cms -decrypt, opens it.</summary>
    public static byte[] BuildKeyMessage(ListKeyFile listKey, string from, string to, X509Certificate2 memberCertificate)
    {
        byte[] text = Encoding.ASCII.GetBytes(listKey.Format().ReplaceLineEndings("\r\n"));
        byte[] entity = [.. Encoding.ASCII.GetBytes(
            "Content-Type: text/plain; charset=us-ascii\r\n"
            + $"Content-Disposition: attachment; filename=\"{ListKeyDirectory.FileName(listKey.List, listKey.Epoch)}\"\r\n\r\n"), .. text];
        try
        {
            byte[] cms = SmimeEntities.EncryptTo(entity, memberCertificate);
            string headers = $"From: {from}\r\nTo: {to}\r\n"
                + $"Subject: List key for {listKey.List}, epoch {listKey.Epoch.ToString(CultureInfo.InvariantCulture)}\r\n"
                + $"Date: {DateTimeOffset.UtcNow.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture)}\r\n"
                + $"X-SecureList-ListKey: {listKey.List}; epoch={listKey.Epoch.ToString(CultureInfo.InvariantCulture)}\r\n";
            return SmimeEntities.WriteEncrypted(headers, cms, authEnveloped: false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(text);
            CryptographicOperations.ZeroMemory(entity);
        }
    }

    private static Command Import(AdminContext context)
    {
        var cert = new Option<string>("--cert") { Description = "Your certificate", Required = true };
        var key = new Option<string>("--key") { Description = "Your private key (PEM, mode 0600)", Required = true };
        var input = new Option<string>("--in") { Description = "The key message you received; - for standard input", Required = true };
        var output = new Option<string>("--out") { Description = "Your list-key directory (LIST.EPOCH.key files, 0600)", Required = true };
        var command = new Command("import", "Decrypt a list-key message and add the key to your key directory (member side)") { cert, key, input, output };
        command.SetAction(parse => context.Run(() =>
        {
            (X509Certificate2 certificate, AsymmetricAlgorithm privateKey) = LoadIdentity(parse.GetValue(cert)!, parse.GetValue(key)!);
            using (privateKey)
            {
                byte[] cms;
                using (Stream stream = MessageFiles.OpenInput(parse.GetValue(input)!))
                {
                    cms = SmimeEntities.ReadEncryptedCms(stream);
                }

                byte[] entity = CmsDecryptor.Decrypt(cms, certificate, privateKey);
                try
                {
                    (_, byte[] body) = SmimeEntities.SplitCanonical(entity);
                    using ListKeyFile listKey = ListKeyFile.Parse(Encoding.ASCII.GetString(body), parse.GetValue(input)!);
                    CryptographicOperations.ZeroMemory(body);
                    string file = new ListKeyDirectory(parse.GetValue(output)!).Store(listKey);
                    context.Output.WriteLine($"imported the list key of {listKey.List} epoch {listKey.Epoch} into {file}");
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(entity);
                }
            }

            return AdminContext.ExitOk;
        }));
        return command;
    }

    /// <summary>A member's certificate and private key (PEM/DER certificate; PKCS#8 or traditional PEM key, 0600).</summary>
    internal static (X509Certificate2 Certificate, AsymmetricAlgorithm Key) LoadIdentity(string certPath, string keyPath)
    {
        if (!File.Exists(certPath))
        {
            throw new UsageException($"{certPath}: no such certificate file");
        }

        if (!File.Exists(keyPath))
        {
            throw new UsageException($"{keyPath}: no such key file");
        }

        X509Certificate2 certificate = CertificateInspector.LoadFile(certPath);
        ListKeyStore.CheckPrivateFile(keyPath);
        return (certificate, ListKeyStore.LoadPrivateKey(keyPath, certificate, () => null));
    }

    internal static string SafeFileName(string address) =>
        new(address.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@' or '+' ? c : '_').ToArray());
}
