using System.Text;
using MilterSecureList.Testing;

namespace MilterSecureList.Mime.Tests;

/// <summary>
/// A throw-away list certificate and key made with openssl at test time, and messages encrypted to it by
/// real senders (openssl cms, openssl smime, gpgsm). Everything lives in a temp dir removed on dispose.
/// </summary>
public sealed class SmimeInteropFixture : IDisposable
{
    public static readonly string[] Senders =
    [
        "cms-default-3des",
        "cms-aes128-stream",
        "cms-aes256-gcm",
        "smime-aes256",
        "smime-stream",
        "gpgsm-aes128",
    ];

    private readonly Dictionary<string, byte[]> _messages = new();
    private readonly object _lock = new();

    public SmimeInteropFixture()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("mime-interop-").FullName;
        Run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "list.key", "-out", "list.pem",
            "-subj", "/CN=Test List/emailAddress=list@example.org", "-days", "2");
        // The plaintext is a MIME entity in canonical CRLF form, as RFC 8551 §3.1.1 requires of senders.
        Plaintext = Encoding.ASCII.GetBytes(
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n" +
            string.Concat(Enumerable.Range(0, 200).Select(i => $"line {i} of the secret list post\r\n")));
        File.WriteAllBytes(Path.Combine(Directory, "plain.txt"), Plaintext);
    }

    public string Directory { get; }

    public byte[] Plaintext { get; }

    public string PathOf(string name) => Path.Combine(Directory, name);

    public byte[] Run(string tool, params string[] args) => Run(tool, null, null, args);

    /// <summary>Runs a peer in the fixture's directory; it must succeed. Returns what it wrote to stdout.</summary>
    private byte[] Run(string tool, byte[]? stdin, IReadOnlyDictionary<string, string>? env, params string[] args) =>
        ExternalTool.Run(tool, args, new ToolOptions { WorkingDirectory = Directory, Stdin = stdin, Environment = env }).EnsureSuccess().StdOutBytes;

    /// <summary>The message a sender produced (cached per fixture), exactly as the tool wrote it (openssl writes LF line ends).</summary>
    public byte[] Message(string sender)
    {
        lock (_lock)
        {
            if (!_messages.TryGetValue(sender, out byte[]? message))
            {
                message = Produce(sender);
                _messages[sender] = message;
            }

            return message;
        }
    }

    /// <summary>Decrypts a DER/BER CMS blob with the list key using openssl.</summary>
    public byte[] DecryptCms(byte[] cms)
    {
        string file = PathOf($"cms-{Guid.NewGuid():N}.der");
        File.WriteAllBytes(file, cms);
        return Run("openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", file, "-inkey", "list.key", "-recip", "list.pem");
    }

    /// <summary>Decrypts a whole S/MIME message with the list key using openssl's own MIME reader.</summary>
    public byte[] DecryptMessage(byte[] message)
    {
        string file = PathOf($"msg-{Guid.NewGuid():N}.eml");
        File.WriteAllBytes(file, message);
        return Run("openssl", "cms", "-decrypt", "-binary", "-in", file, "-inkey", "list.key", "-recip", "list.pem");
    }

    private byte[] Produce(string sender)
    {
        string[] headers = ["-from", "sender@example.org", "-to", "list@example.org", "-subject", "interop " + sender];
        return sender switch
        {
            "cms-default-3des" => Run("openssl", ["cms", "-encrypt", "-binary", "-in", "plain.txt", .. headers, "list.pem"]),
            "cms-aes128-stream" => Run("openssl", ["cms", "-encrypt", "-binary", "-stream", "-aes-128-cbc", "-in", "plain.txt", .. headers, "list.pem"]),
            "cms-aes256-gcm" => Run("openssl", ["cms", "-encrypt", "-binary", "-aes-256-gcm", "-in", "plain.txt", .. headers, "list.pem"]),
            "smime-aes256" => Run("openssl", ["smime", "-encrypt", "-binary", "-aes256", "-in", "plain.txt", .. headers, "list.pem"]),
            "smime-stream" => Run("openssl", ["smime", "-encrypt", "-binary", "-stream", "-in", "plain.txt", .. headers, "list.pem"]),
            "gpgsm-aes128" => GpgsmMessage(),
            _ => throw new ArgumentOutOfRangeException(nameof(sender), sender, null),
        };
    }

    // gpgsm writes bare base64 CMS (BER, indefinite lengths, chunked content); wrap it the way a mail client does.
    private byte[] GpgsmMessage()
    {
        string home = PathOf("gnupg");
        System.IO.Directory.CreateDirectory(home);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); // gpgsm warns on open homes
        }
        // Offline test home: no CRL fetching, and the self-signed list certificate is trusted explicitly.
        File.WriteAllText(Path.Combine(home, "gpgsm.conf"), "disable-crl-checks\ndisable-dirmngr\n");
        var env = new Dictionary<string, string> { ["GNUPGHOME"] = home };
        try
        {
            Run("gpgsm", null, env, "--batch", "--import", "list.pem");
            string listing = Encoding.UTF8.GetString(Run("gpgsm", null, env, "--with-colons", "--list-keys"));
            string fingerprint = listing.Split('\n').First(l => l.StartsWith("fpr:", StringComparison.Ordinal)).Split(':')[9];
            File.WriteAllText(Path.Combine(home, "trustlist.txt"), fingerprint + " S relax\n");
            byte[] base64 = Run("gpgsm", Plaintext, env,
                "--batch", "--disable-policy-checks", "--cipher-algo", "AES128", "--base64", "--encrypt", "-r", fingerprint);
            byte[] header = Encoding.ASCII.GetBytes(
                "From: sender@example.org\nTo: list@example.org\nSubject: interop gpgsm\nMIME-Version: 1.0\n" +
                "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\n" +
                "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"smime.p7m\"\n\n");
            return [.. header, .. base64];
        }
        finally
        {
            try
            {
                Run("gpgconf", null, env, "--kill", "all");
            }
            catch (InvalidOperationException)
            {
                // No agent was started: nothing to stop.
            }
        }
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A gpg-agent socket may vanish while we delete; nothing else to clean.
        }
    }
}
