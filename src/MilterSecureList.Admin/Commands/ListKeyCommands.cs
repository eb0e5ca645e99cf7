using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Cms;
using MilterSecureList.Directory;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist listkey new|distribute|rotate|import|roster</c>: the double-wrap list keys (docs/double-wrap.md §4).
/// They belong to the list owner and the members: none of these verbs opens the server's directory or key directory.
/// The owner's verbs learn the membership from a member export and take certificates only from the owner's roster.</summary>
public static class ListKeyCommands
{
    /// <summary>distribute, rotate, roster check: written for the accepted members, but something the member export
    /// claims was refused (listed on stderr). import: the key message was refused (unsigned, not the pinned owner's,
    /// altered, older epoch).</summary>
    public const int ExitRefused = 3;

    public static Command Build(AdminContext context)
    {
        var listkey = new Command("listkey", "Make, distribute and import the list keys of double-wrap lists (never stored by the server)");
        listkey.Subcommands.Add(New(context));
        listkey.Subcommands.Add(Distribute(context));
        listkey.Subcommands.Add(Rotate(context));
        listkey.Subcommands.Add(Import(context));
        listkey.Subcommands.Add(RosterCommands.Build(context));
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
        OwnerOptions owner = new();
        var command = new Command("distribute",
            "Write, for each member pinned in your roster, the list key signed by you and encrypted to the pinned certificate (owner side; exit 3: something refused)")
        {
            list, key, output, owner.Roster, owner.Members, owner.SignCert, owner.SignKey,
        };
        command.SetAction(parse => context.Run(() =>
        {
            using ListKeyFile listKey = ListKeyFile.Load(parse.GetValue(key)!);
            RequireKeyOf(listKey, parse.GetValue(list)!, parse.GetValue(key)!);
            using OwnerSide side = owner.Open(parse, listKey.List);
            int refused = WriteKeyMessages(context, side, listKey, parse.GetValue(output)!, out int written);
            context.Output.WriteLine($"{written} message(s) for {listKey.List} epoch {listKey.Epoch} in {parse.GetValue(output)}; send them, e.g. sendmail -t < FILE");
            return refused == 0 ? AdminContext.ExitOk : ExitRefused;
        }));
        return command;
    }

    /// <summary>Rotation (docs/double-wrap.md §4): epoch n+1 from the owner's current key file, written to
    /// <c>OUTDIR/LIST.EPOCH.key</c> (0600), and its key messages for the pinned members the export still lists to
    /// <c>OUTDIR/LIST.EPOCH.messages/</c>. Runs on the owner's machine from the member export: the directory, and so
    /// the server host, never sees the new key.</summary>
    private static Command Rotate(AdminContext context)
    {
        var list = new Argument<string>("LIST") { Description = "List address" };
        var key = new Option<string>("--list-key") { Description = "The current list key file", Required = true };
        var output = new Option<string?>("--out") { Description = "Where the new key and its messages go (default: the --list-key file's directory)" };
        var remove = new Option<string[]>("--remove") { Description = "A member who left: unpinned from the roster first, so no key message goes to it (repeatable)" };
        OwnerOptions owner = new();
        var command = new Command("rotate", "Make the next epoch's list key and its signed key messages for the members pinned in your roster (owner side; exit 3: something refused)")
        {
            list, key, output, remove, owner.Roster, owner.Members, owner.SignCert, owner.SignKey,
        };
        command.SetAction(parse => context.Run(() =>
        {
            using ListKeyFile current = ListKeyFile.Load(parse.GetValue(key)!);
            RequireKeyOf(current, parse.GetValue(list)!, parse.GetValue(key)!);
            using OwnerSide side = owner.Open(parse, current.List);
            foreach (string leaver in parse.GetValue(remove) ?? [])
            {
                int unpinned = side.Roster.Remove(leaver, fingerprint: null);
                context.Output.WriteLine($"{leaver}: {unpinned} certificate(s) unpinned from {side.RosterPath}");
                if (side.Export.Members.Any(m => EmailAddress.Comparer.Equals(m.Address, leaver)))
                {
                    context.Error.WriteLine($"securelist: {leaver} is still a member in the export: remove it on the server too (securelist member remove {current.List} {leaver})");
                }
            }

            side.Roster.Save(side.RosterPath);
            string outDir = parse.GetValue(output) ?? Path.GetDirectoryName(Path.GetFullPath(parse.GetValue(key)!))!;
            using ListKeyFile next = ListKeyFile.Create(current.List, checked(current.Epoch + 1));
            System.IO.Directory.CreateDirectory(outDir);
            string keyFile = Path.Combine(outDir, ListKeyDirectory.FileName(next.List, next.Epoch));
            next.Save(keyFile);
            string messageDir = Path.Combine(outDir, Path.GetFileNameWithoutExtension(keyFile) + ".messages");
            int refused = WriteKeyMessages(context, side, next, messageDir, out int written);
            context.Output.WriteLine($"rotated {next.List} to epoch {next.Epoch}: new key {keyFile}; {written} key message(s) in {messageDir} to send");
            return refused == 0 ? AdminContext.ExitOk : ExitRefused;
        }));
        return command;
    }

    private static void RequireKeyOf(ListKeyFile listKey, string list, string file)
    {
        if (!string.Equals(listKey.List, list.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"{file} is the key of {listKey.List}, not {list}");
        }
    }

    /// <summary>One signed, encrypted key message per member the roster pins and the export lists; every refusal of
    /// the plan goes to stderr, one line each. Returns the number of refusals.</summary>
    private static int WriteKeyMessages(AdminContext context, OwnerSide side, ListKeyFile listKey, string outDir, out int written)
    {
        if (side.Export.Mode != "double")
        {
            context.Error.WriteLine($"securelist: warning: {listKey.List} is a {side.Export.Mode} list; its list key is not used by the server");
        }

        DistributionPlan plan = side.Roster.Plan(side.Export, context.Time.GetUtcNow());
        foreach (Refusal refusal in plan.Refused)
        {
            context.Error.WriteLine("securelist: REFUSED " + RosterCommands.Describe(refusal, side.Roster.List, side.RosterPath, side.MembersPath));
        }

        foreach (string absent in plan.PinnedNotMembers)
        {
            context.Error.WriteLine($"securelist: {absent} is pinned in your roster but not a member in the export: no key message");
        }

        System.IO.Directory.CreateDirectory(outDir);
        string from = side.Export.Owner is { } o && KeyMessage.IsHeaderSafe(o) ? o : listKey.List;
        written = 0;
        foreach (KeyRecipient recipient in plan.Recipients)
        {
            byte[] message = KeyMessage.Build(listKey, from, recipient.Address, recipient.Certificate, side.Signer, context.Time.GetUtcNow());
            File.WriteAllBytes(Path.Combine(outDir, SafeFileName(recipient.Address) + ".eml"), message);
            written++;
        }

        return plan.Refused.Count;
    }

    private static Command Import(AdminContext context)
    {
        var cert = new Option<string>("--cert") { Description = "Your certificate", Required = true };
        var key = new Option<string>("--key") { Description = "Your private key (PEM, mode 0600)", Required = true };
        var input = new Option<string>("--in") { Description = "The key message you received; - for standard input", Required = true };
        var output = new Option<string>("--out") { Description = "Your list-key directory (LIST.EPOCH.key files, 0600)", Required = true };
        var ownerCert = new Option<string?>("--owner-cert") { Description = "The list owner's certificate, got from the owner (default: pinned at the first import)" };
        var command = new Command("import",
            "Check the owner's signature on a list-key message, decrypt it and add the key to your key directory (member side; exit 3: refused)")
        {
            cert, key, input, output, ownerCert,
        };
        command.SetAction(parse => context.Run(() =>
        {
            try
            {
                return ImportKey(context, parse.GetValue(cert)!, parse.GetValue(key)!, parse.GetValue(input)!, new ListKeyDirectory(parse.GetValue(output)!), parse.GetValue(ownerCert));
            }
            catch (KeyMessageRefusedException e)
            {
                context.Error.WriteLine($"securelist: refused: {e.Message} (nothing imported)");
                return ExitRefused;
            }
        }));
        return command;
    }

    private static int ImportKey(AdminContext context, string certPath, string keyPath, string input, ListKeyDirectory keys, string? ownerCertPath)
    {
        X509Certificate2? given = null;
        if (ownerCertPath is not null)
        {
            given = File.Exists(ownerCertPath) ? CertificateInspector.LoadFile(ownerCertPath) : throw new UsageException($"{ownerCertPath}: no such certificate file");
        }

        (X509Certificate2 certificate, AsymmetricAlgorithm privateKey) = LoadIdentity(certPath, keyPath);
        byte[] entity;
        using (privateKey)
        {
            byte[] cms;
            using (Stream stream = MessageFiles.OpenInput(input))
            {
                cms = SmimeEntities.ReadEncryptedCms(stream);
            }

            try
            {
                entity = CmsDecryptor.Decrypt(cms, certificate, privateKey);
            }
            catch (CmsRewrapException e)
            {
                // Not for this certificate, or damaged: as decrypt reports it (exit 2 resp. 1), nothing stored.
                context.Error.WriteLine($"securelist: cannot decrypt the key message: {e.Message}");
                return e.Reason is CmsRewrapFailure.NotForThisList ? AdminContext.ExitUsage : AdminContext.ExitFailure;
            }
        }

        bool hadPin = false;
        SignedListKey signed;
        try
        {
            signed = KeyMessage.Open(entity, list =>
            {
                X509Certificate2? pin = keys.LoadOwnerPin(list);
                hadPin = pin is not null;
                if (pin is not null && given is not null && !pin.RawData.AsSpan().SequenceEqual(given.RawData))
                {
                    throw new KeyMessageRefusedException($"{keys.OwnerPinFile(list)} pins another owner certificate (SHA-256 {CertificateInspector.Sha256Fingerprint(pin)}) "
                        + $"than {ownerCertPath} (SHA-256 {CertificateInspector.Sha256Fingerprint(given)}); if the owner really changed certificates, delete that file");
                }

                return pin ?? given;
            }, input);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(entity);
        }

        using ListKeyFile listKey = signed.Key;
        bool stored = keys.Store(listKey, out string file);
        if (!hadPin)
        {
            string pinFile = keys.SaveOwnerPin(listKey.List, signed.Signer);
            context.Output.WriteLine($"pinned the owner certificate of {listKey.List} in {pinFile}: {signed.Signer.Subject}, SHA-256 {CertificateInspector.Sha256Fingerprint(signed.Signer)}"
                + (given is null ? " (first key of this list: compare the fingerprint with the owner's)" : " (as given with --owner-cert)"));
        }

        context.Output.WriteLine(stored
            ? $"imported the list key of {listKey.List} epoch {listKey.Epoch} into {file} (signed by the owner)"
            : $"the list key of {listKey.List} epoch {listKey.Epoch} is already in {file}");
        return AdminContext.ExitOk;
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
