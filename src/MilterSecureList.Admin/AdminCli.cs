using System.CommandLine;
using System.CommandLine.Parsing;
using MilterSecureList.Admin.Commands;

namespace MilterSecureList.Admin;

/// <summary>
/// The <c>securelist</c> command tree. Each verb group lives in its own file under Commands/;
/// add a group with one line in <see cref="BuildRootCommand(AdminContext)"/>.
/// </summary>
public static class AdminCli
{
    /// <summary>Builds the tree for the real process (stdout, stderr, system clock).</summary>
    public static RootCommand BuildRootCommand() =>
        BuildRootCommand(new AdminContext(Console.Out, Console.Error, TimeProvider.System, interactive: !Console.IsOutputRedirected));

    public static RootCommand BuildRootCommand(AdminContext context)
    {
        var root = new RootCommand("securelist: manage encrypted mailing lists, members and list keys");
        root.Options.Add(context.ConfigOption);
        Command list = ListCommands.Build(context);
        foreach (Command verb in ListKeyFileCommands.Build(context)) { list.Subcommands.Add(verb); }
        root.Subcommands.Add(list);
        root.Subcommands.Add(MemberCommands.Build(context));
        root.Subcommands.Add(SmimeCommands.Build(context));
        root.Subcommands.Add(CheckCommand.Build(context));
        root.Subcommands.Add(FilterCommand.Build(context));
        root.Subcommands.Add(ListKeyCommands.Build(context));
        root.Subcommands.Add(UserCommands.Build(context));
        root.Subcommands.Add(CertCommands.Build(context));
        root.Subcommands.Add(GatewayCommands.Build(context));
        root.Subcommands.Add(ReleaseCommands.Build(context));
        foreach (Command verb in EncryptCommands.Build(context)) { root.Subcommands.Add(verb); }
        return root;
    }

    /// <summary>Names what is missing: the parser's own text says "Required argument missing for command: 'add'".</summary>
    private static string Describe(ParseError error)
    {
        if (error.SymbolResult is ArgumentResult { Parent: CommandResult command } argument &&
            error.Message.StartsWith("Required argument missing", StringComparison.Ordinal))
        {
            return $"{CommandPath(command)}: missing {argument.Argument.Name} (usage: securelist {CommandPath(command)} {string.Join(" ", command.Command.Arguments.Select(a => a.Name))} [options])";
        }

        return AdminContext.Printable(error.Message.ReplaceLineEndings(" "));
    }

    private static string CommandPath(CommandResult? command)
    {
        var names = new List<string>();
        for (SymbolResult? r = command; r is CommandResult c && c.Parent is not null; r = c.Parent)
        {
            names.Insert(0, c.Command.Name);
        }

        return string.Join(" ", names);
    }

    /// <summary>Parses and runs ARGS; usage errors print one line and return 2.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, TimeProvider? time = null)
    {
        bool interactive = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var context = new AdminContext(output, error, time ?? TimeProvider.System, interactive);
        RootCommand root = BuildRootCommand(context);
        // No response files: System.CommandLine would read the file named by any argument starting with '@'
        // ("member add LIST @FILE"), and addresses and paths are data, not parser instructions.
        ParseResult result = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (result.Errors.Count > 0)
        {
            error.WriteLine($"securelist: {string.Join("; ", result.Errors.Select(Describe).Distinct())} (see securelist {CommandPath(result.CommandResult)} --help)");
            return AdminContext.ExitUsage;
        }

        return result.Invoke(new InvocationConfiguration
        {
            Output = output,
            Error = error,
            EnableDefaultExceptionHandler = false,
        });
    }
}
