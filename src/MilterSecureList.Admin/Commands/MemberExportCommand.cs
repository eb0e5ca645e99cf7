using System.CommandLine;
using MilterSecureList.Admin.DoubleWrap;

namespace MilterSecureList.Admin.Commands;

/// <summary><c>securelist member export LIST</c> (server side): the expanded members with all their certificates, for the
/// list owner's <c>listkey roster check|distribute|rotate</c> (docs/double-wrap.md §4). Reads the directory only.</summary>
public static class MemberExportCommand
{
    public static Command Build(AdminContext context)
    {
        var list = new Argument<string>("LIST") { Description = "List address" };
        var output = new Option<string?>("--out") { Description = "The export file (default: standard output)" };
        var command = new Command("export", "Write the expanded members and all their certificates as JSON, for the owner of a double-wrap list") { list, output };
        command.SetAction(parse => context.Run(() =>
        {
            string json;
            using (AdminSession session = context.OpenSession(parse))
            {
                MemberExport export = MemberExport.FromDirectory(session, parse.GetValue(list)!);
                json = export.ToJson();
                if (parse.GetValue(output) is { } file)
                {
                    File.WriteAllText(file, json);
                    context.Output.WriteLine($"{export.Members.Count} member(s) of {export.List} written to {file}; give it to the list owner");
                    return AdminContext.ExitOk;
                }
            }

            context.Output.Write(json);
            return AdminContext.ExitOk;
        }));
        return command;
    }
}
