using System.CommandLine;
using MilterSecureList.Filter;
using MilterSecureList.Mime;
using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Admin.Commands;

/// <summary>
/// <c>securelist check</c>: runs the milter's list filter offline on one message, with the same directory,
/// keys and [Policy] as the daemon, and prints the verdict and every modification. The first output line is the
/// SMTP reply the milter would give, so an Exim ACL can use it as its message.
/// Exit 0 = accepted (continue), 65 = rejected, 75 = tempfailed, 1 = error, 2 = usage.
/// </summary>
public static class CheckCommand
{
    public const int ExitRejected = 65; // EX_DATAERR
    public const int ExitTempfail = 75; // EX_TEMPFAIL

    public static Command Build(AdminContext context)
    {
        var from = new Option<string>("--from") { Description = "Envelope sender (MAIL FROM)", Required = true };
        var rcpts = new Option<string[]>("--rcpt") { Description = "Envelope recipient (repeat for each)", Required = true };
        var input = new Option<string?>("--in") { Description = "The message (RFC 5322); - for standard input" };
        var output = new Option<string?>("--out") { Description = "Write the message as members would receive it" };
        var eximData = new Option<string?>("--exim-data-file")
        {
            Description = "Exim DATA ACL: the spool -D file (first line <id>-D, then the body); the header is --content-type. " +
                "The first output line is then the bare reason text Exim puts after 550 5.7.1",
        };
        var contentType = new Option<string?>("--content-type") { Description = "With --exim-data-file: the message's Content-Type header value" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print the log lines the daemon would write for this message" };
        var command = new Command("check", "Run the list filter offline and print the verdict and modifications")
        {
            from, rcpts, input, output, eximData, contentType, verbose,
        };
        command.SetAction(parse => context.Run(() =>
        {
            using AdminSession session = context.OpenSession(parse);
            PolicyOptions policy = session.Configuration.Policy();
            var notices = new RecordingOwnerNotifier();
            var log = new CollectingLogger();
            var processor = new ListMessageProcessor(session.Directory, policy, notices, log, context.Time);
            long maxMessageSize = session.Configuration.MaxMessageSize;
            long maxHeaderBytes = session.Configuration.MaxHeaderBytes;

            string sender = Bracket(RequireAddress(parse.GetValue(from)!, "--from"));
            bool exim = parse.GetValue(eximData) is not null;
            var accepted = new List<string>();
            var listRcpts = new List<string>();
            bool rcptTempfail = false;
            var report = new List<string>();
            // Exim passes $recipients as one argument: "a@x, b@y".
            IEnumerable<string> all = parse.GetValue(rcpts)!.SelectMany(r => r.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            foreach (string rcpt in all.Select(r => Bracket(RequireAddress(r, "--rcpt"))))
            {
                RecipientCheck check = processor.CheckRecipient(sender, rcpt);
                rcptTempfail |= check.IsTempfail;
                if (check.Refusal is SmtpReply refusal)
                {
                    report.Add($"RCPT {rcpt}: refused {refusal}");
                }
                else
                {
                    accepted.Add(rcpt);
                    if (check.IsList)
                    {
                        listRcpts.Add(rcpt);
                    }

                    report.Add($"RCPT {rcpt}: {(check.IsList ? "list" : "not a list")}");
                }
            }

            using Stream inStream = exim
                ? EximDataMessage(parse.GetValue(eximData)!, parse.GetValue(contentType))
                : MessageFiles.OpenInput(parse.GetValue(input) ?? throw new UsageException("--in FILE (or --exim-data-file) is required"));
            RawMessage message;
            try
            {
                message = MessageReader.Read(inStream, maxHeaderBytes);
            }
            catch (MimeFormatException e) when (e.Reason == MimeErrorReason.HeaderTooLarge)
            {
                // The daemon refuses any message whose header is over [Milter] MaxHeaderBytes, list mail or not.
                MilterVerdict tooLarge = new MilterSessionOptions().HeaderLimitVerdict;
                context.Output.WriteLine(tooLarge.ReplyText);
                report.ForEach(context.Output.WriteLine);
                context.Output.WriteLine($"verdict: reject ({e.Message}: [Milter] MaxHeaderBytes = {maxHeaderBytes})");
                return ExitRejected;
            }
            catch (MimeFormatException e) when (listRcpts.Count > 0)
            {
                // List mail the filter cannot read is the sender's problem: the documented 554 path, never exit 1.
                SmtpReply unreadable = ReplyTexts.UnsupportedCms(listRcpts[0].Trim('<', '>'), e.Message);
                context.Output.WriteLine(exim ? unreadable.Text : unreadable.ToString());
                report.ForEach(context.Output.WriteLine);
                context.Output.WriteLine($"verdict: reject (mime: {e.Message})");
                return ExitRejected;
            }
            catch (MimeFormatException e)
            {
                // Not a message at all: the milter never sees such input (Postfix would not pass it), so answer as it
                // answers a message it cannot process.
                var reply = new SmtpReply(554, "5.6.0", $"the message cannot be read: {e.Message}");
                context.Output.WriteLine(exim ? reply.Text : reply.ToString());
                return ExitRejected;
            }

            using RawMessage disposeMessage = message;
            if (accepted.Count == 0)
            {
                context.Output.WriteLine(report.Count > 0 ? report[0][(report[0].IndexOf("refused ", StringComparison.Ordinal) + 8)..] : "554 5.5.1 no valid recipients");
                report.ForEach(context.Output.WriteLine);
                if (rcptTempfail)
                {
                    // The directory failed at RCPT time (the daemon answers 451 there): say why, exit as a tempfail.
                    PrintLog(context, log, parse.GetValue(verbose));
                    return ExitTempfail;
                }

                return ExitRejected;
            }

            if (inStream.Length > maxMessageSize)
            {
                // The daemon refuses a body over [Milter] MaxMessageSize before the filter sees it. Measured here on
                // the whole file: the header adds at most the reader's 1 MiB header limit.
                MilterVerdict oversize = new MilterSessionOptions().OversizeVerdict;
                context.Output.WriteLine(oversize.ReplyText);
                report.ForEach(context.Output.WriteLine);
                context.Output.WriteLine($"verdict: reject (message of {inStream.Length} bytes is larger than [Milter] MaxMessageSize = {maxMessageSize})");
                return ExitRejected;
            }

            var headers = message.Header.ToMimeHeaders().Select(h => new HeaderField(h.Name, h.Value)).ToList();
            using FilterDecision decision = processor
                .ProcessAsync(new ListMessage(sender, accepted, headers, message.Body, "offline"))
                .GetAwaiter().GetResult();

            context.Output.WriteLine(exim ? decision.Reply?.Text ?? "continue" : decision.Reply?.ToString() ?? "250 2.0.0 continue");
            report.ForEach(context.Output.WriteLine);
            context.Output.WriteLine($"verdict: {decision.Kind.ToString().ToLowerInvariant()} ({decision.Reason})");
            if (decision.Kind == FilterVerdictKind.Tempfail)
            {
                PrintLog(context, log, parse.GetValue(verbose));
            }
            else if (parse.GetValue(verbose))
            {
                PrintLog(context, log, verbose: true);
            }
            foreach (string r in decision.DeleteRecipients)
            {
                context.Output.WriteLine($"DELRCPT {r}");
            }

            foreach (string r in decision.AddRecipients)
            {
                context.Output.WriteLine($"ADDRCPT <{r}>");
            }

            foreach (HeaderField h in decision.AddHeaders)
            {
                context.Output.WriteLine($"ADDHEADER {h.Name}: {h.Value}");
            }

            if (decision.ChangeFrom is string newFrom)
            {
                context.Output.WriteLine($"CHGFROM <{newFrom}>");
            }

            // The new body is encoded while it is read: read it once, for its size and for --out.
            using var newBody = new MemoryStream();
            decision.NewBody?.CopyTo(newBody);
            if (decision.NewBody is not null)
            {
                context.Output.WriteLine($"REPLBODY {newBody.Length} bytes ({decision.MembersRekeyed} members re-keyed)");
            }

            foreach ((string member, string problem) in decision.SkippedMembers)
            {
                context.Output.WriteLine($"skipped {member}: {problem} (the daemon notifies the list owner)");
            }

            if (parse.GetValue(output) is string outPath && decision.Kind == FilterVerdictKind.Continue)
            {
                using var buffer = new MemoryStream();
                MessageWriter.WriteHeader(message.Header, decision.AddHeaders.Select(h => new MimeHeader(h.Name, h.Value)), buffer);
                Stream delivered = decision.NewBody is null ? message.Body : newBody;
                delivered.Position = 0;
                delivered.CopyTo(buffer);
                MessageFiles.WriteOutput(outPath, buffer);
            }

            return decision.Kind switch
            {
                FilterVerdictKind.Reject => ExitRejected,
                FilterVerdictKind.Tempfail => ExitTempfail,
                _ => AdminContext.ExitOk,
            };
        }));
        return command;
    }

    /// <summary>
    /// A tempfail's verdict names only the failure class; the daemon's log line names the file and the cause,
    /// so it is printed as "cause:". With -v every log line follows.
    /// </summary>
    private static void PrintLog(AdminContext context, CollectingLogger log, bool verbose)
    {
        if (log.LastError is string cause)
        {
            context.Output.WriteLine($"cause: {cause}");
        }

        if (verbose)
        {
            foreach (string line in log.Lines)
            {
                context.Output.WriteLine($"log: {line}");
            }
        }
    }

    private static string Bracket(string address) => address.StartsWith('<') ? address : $"<{address}>";

    /// <summary>An envelope address as an MTA would pass it: no control characters (a newline would forge report lines).</summary>
    private static string RequireAddress(string address, string option)
    {
        string a = address.Trim();
        if (a.Length == 0 || a.Any(char.IsControl) || a.Contains(' ', StringComparison.Ordinal))
        {
            throw new UsageException($"{option} '{AdminContext.Printable(a)}' is not an envelope address");
        }

        return a;
    }

    /// <summary>A message the reader refuses (header too large, a header line without a colon) is bad input: exit 2.</summary>
    /// <summary>Exim's spool data file holds "ID-D" on its first line, then the body; the header section is
    /// elsewhere, so the Content-Type the ACL passes is enough to classify the message.</summary>
    private static MemoryStream EximDataMessage(string path, string? contentType)
    {
        byte[] data = File.ReadAllBytes(path);
        int firstLine = Array.IndexOf(data, (byte)'\n') + 1;
        var message = new MemoryStream();
        string ct = (contentType ?? "text/plain").ReplaceLineEndings(" ");
        message.Write(System.Text.Encoding.UTF8.GetBytes($"MIME-Version: 1.0\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
        message.Write(data, firstLine, data.Length - firstLine);
        message.Position = 0;
        return message;
    }
}
