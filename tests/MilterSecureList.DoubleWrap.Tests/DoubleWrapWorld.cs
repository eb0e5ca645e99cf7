using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin;
using MilterSecureList.Testing;

namespace MilterSecureList.DoubleWrap.Tests;

/// <summary>A list owner, members with real (openssl-made) RSA and EC certificates, and the server's directory in a
/// temp directory; the securelist CLI runs in-process against the same milter.ini the daemon reads.</summary>
internal sealed class DoubleWrapWorld : IDisposable
{
    public const string List = "crypto@lists.dw.test";
    public const string ListDomain = "lists.dw.test";

    public DoubleWrapWorld()
    {
        Root = System.IO.Directory.CreateTempSubdirectory("msl-double-").FullName;
        File.SetUnixFileMode(Root, (UnixFileMode)0x1ED); // 0755: Postfix reaches the daemon's socket below it
        ServerDir = System.IO.Directory.CreateDirectory(Path.Combine(Root, "server")).FullName;
        File.SetUnixFileMode(ServerDir, (UnixFileMode)0x1ED);
        OwnerDir = System.IO.Directory.CreateDirectory(Path.Combine(Root, "owner")).FullName;
        DatabasePath = Path.Combine(ServerDir, "lists.db");
        KeysDirectory = Path.Combine(ServerDir, "keys");
        LogPath = Path.Combine(ServerDir, "milter.log");
        ConfigBody = $"[Milter]\nHandler = lists\n[Directory]\nProvider = sqlite\nPath = {DatabasePath}\nCacheRefreshSeconds = 1\n"
            + $"[Keys]\nDirectory = {KeysDirectory}\n[Logging]\nFile = {LogPath}\nLevel = debug\n";
        ConfigFile = Path.Combine(ServerDir, "admin.ini");
        File.WriteAllText(ConfigFile, ConfigBody);
    }

    public string Root { get; }

    public string ServerDir { get; }

    public string OwnerDir { get; }

    public string DatabasePath { get; }

    public string KeysDirectory { get; }

    public string LogPath { get; }

    public string ConfigFile { get; }

    /// <summary>The INI body without [Listener] (DaemonProcess adds its socket).</summary>
    public string ConfigBody { get; }

    public string MemberDir(string name)
    {
        string dir = Path.Combine(Root, name);
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    public string Cert(string name) => Path.Combine(MemberDir(name), name + ".pem");

    public string Key(string name) => Path.Combine(MemberDir(name), name + ".key");

    public string ListKeys(string name) => Path.Combine(MemberDir(name), "listkeys");

    public static string Address(string name) => name + "@dw.test";

    /// <summary>A self-signed S/MIME certificate made by openssl (rsa:2048 or ec), issued to <paramref name="address"/>
    /// (default: NAME@dw.test).</summary>
    public async Task MakeMemberAsync(string name, bool ec, string? address = null, int days = 30)
    {
        string openssl = ExternalTool.Require("openssl", "openssl");
        string dir = MemberDir(name);
        var args = new List<string> { "req", "-x509", "-nodes", "-days", days.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (ec)
        {
            args.AddRange(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]);
        }
        else
        {
            args.AddRange(["-newkey", "rsa:2048"]);
        }

        args.AddRange(["-keyout", Key(name), "-out", Cert(name), "-subj", $"/CN={name}/emailAddress={address ?? Address(name)}",
            "-addext", $"subjectAltName=email:{address ?? Address(name)}",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment" + (ec ? ",keyAgreement" : string.Empty),
            "-addext", "extendedKeyUsage=emailProtection"]);
        (int code, _, string err) = await ExternalTool.RunAsync(openssl, args);
        Assert.True(code == 0, $"openssl req for {name}: {err}");
        File.SetUnixFileMode(Key(name), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.True(System.IO.Directory.Exists(dir));
    }

    /// <summary>Runs securelist in-process; the server's --config is appended.</summary>
    public CliRun Cli(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = AdminCli.Run([.. args, "--config", ConfigFile], output, error);
        return new CliRun(code, output.ToString(), error.ToString());
    }

    public CliRun CliOk(params string[] args)
    {
        CliRun run = Cli(args);
        Assert.True(run.ExitCode == 0, $"securelist {string.Join(' ', args)}: exit {run.ExitCode}\n{run.Error}\n{run.Output}");
        return run;
    }

    /// <summary>The owner's roster (pinned member certificates), on the owner's machine.</summary>
    public string Roster => Path.Combine(OwnerDir, "roster.json");

    /// <summary>The server's member export as copied to the owner.</summary>
    public string Members => Path.Combine(OwnerDir, "members.json");

    /// <summary>--roster, --members and the owner's signing identity (made by <see cref="MakeMemberAsync"/>("owner")).</summary>
    public string[] OwnerSigning => ["--roster", Roster, "--members", Members, "--sign-cert", Cert("owner"), "--sign-key", Key("owner")];

    /// <summary>securelist on the owner's machine: no server configuration, so nothing it does can touch the directory.</summary>
    public CliRun OwnerCli(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = AdminCli.Run([.. args, "--config", Path.Combine(OwnerDir, "no-server-config.ini")], output, error);
        return new CliRun(code, output.ToString(), error.ToString());
    }

    public CliRun OwnerCliOk(params string[] args)
    {
        CliRun run = OwnerCli(args);
        Assert.True(run.ExitCode == 0, $"securelist {string.Join(' ', args)} (owner): exit {run.ExitCode}\n{run.Error}\n{run.Output}");
        return run;
    }

    /// <summary>The server's own key pair for the list (what an attacker who owns the server has).</summary>
    public (X509Certificate2 Cert, AsymmetricAlgorithm Key) ServerKey()
    {
        string pem = CliOk("list", "export-cert", List).Output;
        X509Certificate2 cert = X509Certificate2.CreateFromPem(pem);
        string keyFile = Assert.Single(System.IO.Directory.GetFiles(KeysDirectory, "*.key.pem"));
        return (cert, Directory.ListKeyStore.LoadPrivateKey(keyFile, cert, () => null));
    }

    /// <summary>Every file of the server's state: database (with WAL/SHM), key directory, log, config.</summary>
    public IEnumerable<string> ServerFiles() => System.IO.Directory.EnumerateFiles(ServerDir, "*", SearchOption.AllDirectories);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal sealed record CliRun(int ExitCode, string Output, string Error);

/// <summary>What the server learns from a post: it removes its own outer layer (RSAES-OAEP-SHA256 ktri inside the
/// double-wrap OtherRecipientInfo, docs/double-wrap.md §2) exactly as DoubleWrap.Rewrap does, and gets the inner
/// blob, the RFC 5649 wrap of the content key under the list key. Parsed here independently of the product code.</summary>
internal static class ServerView
{
    public static byte[] InnerBlob(byte[] contentInfo, RSA serverKey)
    {
        var ci = new AsnReader(contentInfo, AsnEncodingRules.BER).ReadSequence();
        ci.ReadObjectIdentifier();
        AsnReader env = ci.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, true)).ReadSequence();
        env.ReadInteger();
        if (env.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
        {
            env.ReadEncodedValue(); // originatorInfo
        }

        AsnReader ris = env.ReadSetOf();
        while (ris.HasData)
        {
            Asn1Tag tag = ris.PeekTag();
            if (!tag.HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 4)))
            {
                ris.ReadEncodedValue();
                continue;
            }

            AsnReader ori = ris.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 4, true));
            Assert.Equal("2.25.311959940723462949415910998726157428279.1", ori.ReadObjectIdentifier());
            AsnReader dw = ori.ReadSequence();
            dw.ReadInteger();
            dw.ReadSequence();             // listKeyId
            dw.ReadSequence();             // innerWrap
            AsnReader ktri = dw.ReadSequence();
            ktri.ReadInteger();
            ktri.ReadEncodedValue();       // rid
            ktri.ReadSequence();           // RSAES-OAEP
            byte[] encryptedKey = ktri.ReadOctetString();
            return serverKey.Decrypt(encryptedKey, RSAEncryptionPadding.OaepSHA256);
        }

        throw new InvalidOperationException("no double-wrap RecipientInfo");
    }

    /// <summary>Every 32-byte window of the data tried as the list key on the inner blob (RFC 5649 integrity check).
    /// Returns how many windows were tried; throws if one opens the blob.</summary>
    public static long TryEveryWindow(byte[] blob, byte[] data, string source)
    {
        using var aes = Aes.Create();
        byte[] candidate = new byte[32];
        long tried = 0;
        for (int i = 0; i + 32 <= data.Length; i++)
        {
            data.AsSpan(i, 32).CopyTo(candidate);
            aes.Key = candidate;
            try
            {
                aes.DecryptKeyWrapPadded(blob);
                throw new InvalidOperationException($"{source} offset {i} opens the inner blob: the server could read the post");
            }
            catch (CryptographicException)
            {
                tried++;
            }
        }

        return tried;
    }

    /// <summary>The key as raw bytes, hex (both cases) and base64 (also without padding).</summary>
    public static IEnumerable<byte[]> Encodings(byte[] key) =>
    [
        key,
        Encoding.ASCII.GetBytes(Convert.ToHexStringLower(key)),
        Encoding.ASCII.GetBytes(Convert.ToHexString(key)),
        Encoding.ASCII.GetBytes(Convert.ToBase64String(key)),
        Encoding.ASCII.GetBytes(Convert.ToBase64String(key).TrimEnd('=')),
    ];
}
