using System.CommandLine;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Filter;
using MilterSecureList.Mime;
using MimeKit;

namespace MilterSecureList.Admin.Commands;

/// <summary>
/// <c>securelist filter --envelope-headers</c>: Exim's transport filter (contrib/exim). Exim has no milter
/// client; it expands the list itself and delivers each member separately through this filter, which re-keys
/// the post for that one member. Exim 4.96 refuses envelope values as filter arguments (tainted), so the
/// transport passes them as header lines, which this filter requires exactly once each and removes:
/// <c>Return-path</c>, <c>X-SecureList-Envelope-To</c> (the member), <c>X-SecureList-List</c>.
/// Standard output gets the complete message or nothing; nothing is ever written to standard error, because
/// Exim merges it into the message. Exit 0 = deliver; 75 = defer (our failures, policy refusals).
/// </summary>
public static class FilterCommand
{
    private const string ReturnPath = "Return-path";
    private const string EnvelopeTo = "X-SecureList-Envelope-To";
    private const string ListHeader = "X-SecureList-List";

    public static Command Build(AdminContext context)
    {
        var envelopeHeaders = new Option<bool>("--envelope-headers")
        {
            Description = "Read sender, member and list from the Return-path, X-SecureList-Envelope-To and X-SecureList-List header lines",
            Required = true,
        };
        var command = new Command("filter", "Exim transport filter: re-key a post read on stdin for one member, write it to stdout") { envelopeHeaders };
        command.SetAction(parse =>
        {
            try
            {
                return Run(context, parse);
            }
            catch (Exception)
            {
                // Anything at all: defer this member's delivery. No text: stderr would end up in the message.
                return CheckCommand.ExitTempfail;
            }
        });
        return command;
    }

    private static int Run(AdminContext context, ParseResult parse)
    {
        using var input = new MemoryStream();
        Console.OpenStandardInput().CopyTo(input);
        bool lfOnly = input.GetBuffer().AsSpan(0, (int)input.Length).IndexOf((byte)'\r') < 0;
        input.Position = 0;
        using RawMessage message = MessageReader.Read(input);

        string sender = Single(message.Header, ReturnPath);
        string member = EnvelopeAddress.StripBrackets(Single(message.Header, EnvelopeTo));
        string list = EnvelopeAddress.StripBrackets(Single(message.Header, ListHeader));
        var kept = message.Header.Where(h => !Is(h, ReturnPath) && !Is(h, EnvelopeTo) && !Is(h, ListHeader)).ToList();

        using AdminSession session = context.OpenSession(parse);
        PolicyOptions policy = session.Configuration.Policy();
        var processor = new ListMessageProcessor(session.Directory, policy, new RecordingOwnerNotifier(), NullLogger.Instance, context.Time);
        var headers = kept.ToMimeHeaders().Select(h => new HeaderField(h.Name, h.Value)).ToList();
        using FilterDecision decision = processor
            .ProcessAsync(new ListMessage(sender, [$"<{list}>"], headers, message.Body, "exim", OnlyMember: member))
            .GetAwaiter().GetResult();
        if (decision.Kind != FilterVerdictKind.Continue || !decision.AddRecipients.Contains(member, StringComparer.OrdinalIgnoreCase))
        {
            return CheckCommand.ExitTempfail;
        }

        using var output = new MemoryStream();
        MessageWriter.WriteHeader(kept, decision.AddHeaders.Select(h => new MimeHeader(h.Name, h.Value)), output);
        if (decision.NewBody is Stream body)
        {
            body.CopyTo(output); // encoded while it is read
        }
        else
        {
            message.Body.Position = 0;
            message.Body.CopyTo(output);
        }

        byte[] bytes = output.ToArray();
        if (lfOnly)
        {
            // Exim hands the filter LF line ends and expects them back (it adds CR itself for SMTP).
            bytes = Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(bytes).Replace("\r\n", "\n", StringComparison.Ordinal));
        }

        using Stream stdout = Console.OpenStandardOutput();
        stdout.Write(bytes);
        return AdminContext.ExitOk;
    }

    private static string Single(HeaderList header, string name)
    {
        var all = header.Where(h => Is(h, name)).ToMimeHeaders().ToList();
        return all.Count == 1 ? all[0].Value : throw new InvalidDataException($"expected exactly one {name} header, found {all.Count}");
    }

    private static bool Is(Header field, string name) => string.Equals(field.Field, name, StringComparison.OrdinalIgnoreCase);
}
