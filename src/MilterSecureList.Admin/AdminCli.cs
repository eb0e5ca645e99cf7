using System.CommandLine;
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
        root.Subcommands.Add(ListCommands.Build(context));
        root.Subcommands.Add(MemberCommands.Build(context));
        root.Subcommands.Add(SmimeCommands.Build(context));
        root.Subcommands.Add(CheckCommand.Build(context));
        root.Subcommands.Add(FilterCommand.Build(context));
        root.Subcommands.Add(ListKeyCommands.Build(context));
        root.Subcommands.Add(UserCommands.Build(context));
        root.Subcommands.Add(CertCommands.Build(context));
        root.Subcommands.Add(GatewayCommands.Build(context));
        foreach (Command verb in EncryptCommands.Build(context)) { root.Subcommands.Add(verb); }
        return root;
    }

    /// <summary>Parses and runs ARGS; usage errors print one line and return 2.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, TimeProvider? time = null)
    {
        bool interactive = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var context = new AdminContext(output, error, time ?? TimeProvider.System, interactive);
        RootCommand root = BuildRootCommand(context);
        ParseResult result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            error.WriteLine($"securelist: {string.Join("; ", result.Errors.Select(e => e.Message))} (see securelist --help)");
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
