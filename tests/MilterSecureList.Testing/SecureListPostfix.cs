namespace MilterSecureList.Testing;

/// <summary>
/// A <see cref="PostfixInstance"/> configured with the production snippets in contrib/postfix (main.cf.snippet
/// and master.cf.snippet, with @SOCKET@ and @LISTDOMAIN@ substituted, as scripts/postfix-sandbox.sh applies them),
/// plus the "securelist-hold" transport the snippet's transport_maps names and a second smtpd on
/// <see cref="BypassPort"/> that runs without milters, to show that list mail bypassing the milter never
/// leaves unexpanded. Built by composition: PostfixInstance is owned by another fixture.
/// </summary>
public sealed class SecureListPostfix : IAsyncDisposable
{
    /// <summary>The list-domain transport: a pipe that always exits EX_TEMPFAIL (same line as postfix-sandbox.sh).</summary>
    public const string HoldService = "securelist-hold unix - n n - - pipe flags=q user=nobody argv=/bin/sh -c { exit 75 }";

    private SecureListPostfix(PostfixInstance postfix, int bypassPort)
    {
        Postfix = postfix;
        BypassPort = bypassPort;
    }

    public PostfixInstance Postfix { get; }

    /// <summary>An smtpd with <c>-o smtpd_milters=</c>: what an operator's mistaken extra listener would be.</summary>
    public int BypassPort { get; }

    /// <summary>The main.cf lines of contrib/postfix/main.cf.snippet, placeholders substituted.</summary>
    public static IReadOnlyList<string> MainCfSnippet(string milterSocket, string listDomain)
    {
        string file = Path.Combine(DaemonProcess.RepositoryRoot(), "contrib", "postfix", "main.cf.snippet");
        return [.. File.ReadAllLines(file)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Replace("@SOCKET@", milterSocket, StringComparison.Ordinal).Replace("@LISTDOMAIN@", listDomain, StringComparison.Ordinal))
            // The snippet appends to an existing relay_domains; our instance starts with an empty one, and
            // postconf -e would make "$relay_domains" refer to itself.
            .Select(l => l.Replace("relay_domains = $relay_domains, ", "relay_domains = ", StringComparison.Ordinal))];
    }

    /// <summary>The service lines of contrib/postfix/master.cf.snippet (comments dropped).</summary>
    public static IReadOnlyList<string> MasterCfSnippet()
    {
        string file = Path.Combine(DaemonProcess.RepositoryRoot(), "contrib", "postfix", "master.cf.snippet");
        return [.. File.ReadAllLines(file).Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#'))];
    }

    public static async Task<SecureListPostfix> StartAsync(string milterSocket, string listDomain, IEnumerable<string>? extraMainCf = null)
    {
        PostfixInstance postfix = await PostfixInstance.StartAsync(milterSocket, [.. MainCfSnippet(milterSocket, listDomain), .. extraMainCf ?? []]).ConfigureAwait(false);
        try
        {
            int bypass = ExternalTool.FreeTcpPort();
            string masterCf = Path.Combine(postfix.ConfigDirectory, "master.cf");
            string[] present = [.. File.ReadAllLines(masterCf).Select(l => l.Split(' ', 2)[0])];
            var add = new List<string>();
            foreach (string line in MasterCfSnippet())
            {
                // A service the instance already defines (e.g. "retry") is kept; master.cf forbids duplicates.
                if (!present.Contains(line.Split(' ', 2)[0], StringComparer.Ordinal))
                {
                    add.Add(line);
                }
            }

            // contrib/postfix/master.cf.snippet does not (yet) define the transport its main.cf.snippet names;
            // take postfix-sandbox.sh's definition unless the snippet brings its own.
            if (!add.Concat(present).Any(l => l.Split(' ', 2)[0] == "securelist-hold"))
            {
                add.Add(HoldService);
            }

            add.Add($"127.0.0.1:{bypass} inet n - n - - smtpd -o smtpd_milters= -o non_smtpd_milters=");
            await File.AppendAllLinesAsync(masterCf, add).ConfigureAwait(false);
            await postfix.ReloadAsync().ConfigureAwait(false);
            await Poll.UntilAsync(() => Loopback.IsListeningAsync(bypass), "the milter-less smtpd to listen on port " + bypass).ConfigureAwait(false);
            return new SecureListPostfix(postfix, bypass);
        }
        catch
        {
            await postfix.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Queue files in the deferred queue.</summary>
    public int DeferredCount()
    {
        string d = Path.Combine(Postfix.QueueDirectory, "deferred");
        return System.IO.Directory.Exists(d) ? System.IO.Directory.GetFiles(d, "*", SearchOption.AllDirectories).Length : 0;
    }

    public ValueTask DisposeAsync() => Postfix.DisposeAsync();
}
