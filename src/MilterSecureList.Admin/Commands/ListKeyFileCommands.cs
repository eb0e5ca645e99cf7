using System.CommandLine;
using MilterSecureList.Directory;

namespace MilterSecureList.Admin.Commands;

/// <summary>
/// <c>securelist list export-key|import-key</c>: carry a list's private key files to another mail
/// host that shares the directory database (docs/operations.md). Added to the <c>list</c> group.
/// </summary>
public static class ListKeyFileCommands
{
    public static IEnumerable<Command> Build(AdminContext context) => [Export(context), Import(context)];

    private static Command Export(AdminContext context)
    {
        var address = new Argument<string>("ADDRESS") { Description = "List address" };
        var output = new Option<string>("--out")
        {
            Description = "Bundle file to create (mode 0600; an existing file is refused), or - for stdout (e.g. | ssh host securelist list import-key --in -)",
            Required = true,
        };
        var command = new Command("export-key", "Write the list's private key files as one bundle, for another mail host on the same directory") { address, output };
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            string target = parse.GetValue(output)!;
            int count;
            if (target == "-")
            {
                using Stream stdout = Console.OpenStandardOutput();
                count = ListKeyTransfer.Export(session.Store, session.Keys, parse.GetValue(address)!, stdout);
                return AdminContext.ExitOk;
            }

            if (File.Exists(target))
            {
                throw new UsageException($"--out {target} exists; not overwritten");
            }

            var create = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            };
            try
            {
                using var file = new FileStream(target, create);
                count = ListKeyTransfer.Export(session.Store, session.Keys, parse.GetValue(address)!, file);
            }
            catch
            {
                File.Delete(target);
                throw;
            }

            context.Output.WriteLine($"wrote {count} key file(s) of {parse.GetValue(address)} to {target} (private keys: copy it over a secure channel, then delete it)");
            return AdminContext.ExitOk;
        }));
        return command;
    }

    private static Command Import(AdminContext context)
    {
        var input = new Option<string>("--in")
        {
            Description = "Bundle from `list export-key` (must not be readable by group or others), or - for stdin",
            Required = true,
        };
        var command = new Command("import-key", "Install a list's private key files from an export-key bundle into this host's [Keys] Directory") { input };
        command.SetAction(parse => context.Run(() =>
        {
            string source = parse.GetValue(input)!;
            using AdminSession session = context.OpenSession(parse);
            (string list, IReadOnlyList<ImportedKeyFile> files) result;
            if (source == "-")
            {
                using Stream stdin = Console.OpenStandardInput();
                result = ListKeyTransfer.Import(session.Store, session.Keys, stdin, "stdin");
            }
            else
            {
                if (!File.Exists(source))
                {
                    throw new UsageException($"--in {source}: no such file");
                }

                ListKeyStore.CheckPrivateFile(source);
                using FileStream file = File.OpenRead(source);
                result = ListKeyTransfer.Import(session.Store, session.Keys, file, source);
            }

            int written = result.files.Count(f => f.Written);
            context.Output.WriteLine($"{result.list}: {written} key file(s) installed, {result.files.Count - written} already present, in {session.Keys.DirectoryPath}");
            return AdminContext.ExitOk;
        }));
        return command;
    }
}
