namespace MilterSecureList.Admin.Tests;

/// <summary>The list owner's machine in the double-wrap tests: a roster, the member export copied from the server, and
/// the owner's signing certificate. Owner verbs run with a --config that does not exist, so every test that uses
/// them also shows that they never open the server's directory.</summary>
internal sealed class OwnerDesk
{
    public const string List = "crypto@lists.example.org";

    private readonly CliHarness _server;

    public OwnerDesk(CliHarness server, string name = "owner")
    {
        _server = server;
        Dir = server.Temp.File(name + "-desk");
        System.IO.Directory.CreateDirectory(Dir);
        Roster = Path.Combine(Dir, "roster.json");
        Members = Path.Combine(Dir, "members.json");
        People.Make(server, name, ec: false);
        Cert = server.Temp.File(name + ".pem");
        Key = server.Temp.File(name + ".key");
    }

    public string Dir { get; }

    public string Roster { get; }

    public string Members { get; }

    public string Cert { get; }

    public string Key { get; }

    /// <summary>--roster, --members, --sign-cert, --sign-key.</summary>
    public string[] Signing => ["--roster", Roster, "--members", Members, "--sign-cert", Cert, "--sign-key", Key];

    /// <summary>An owner-side verb, without access to any directory.</summary>
    public CliResult Run(params string[] args) => CliHarness.RunRaw([.. args, "--config", Path.Combine(Dir, "no-such-milter.ini")]);

    /// <summary>The server's <c>member export</c>, copied to the owner.</summary>
    public void Export() => _server.Run("member", "export", List, "--out", Members).AssertOk();

    /// <summary>Pins the certificate file the member handed over.</summary>
    public void Accept(string name) =>
        Run("listkey", "roster", "accept", List, $"{name}@example.org", "--roster", Roster, "--cert", _server.Temp.File(name + ".pem")).AssertOk();
}

/// <summary>Members, owners and attackers with openssl-made self-signed certificates.</summary>
internal static class People
{
    /// <summary>NAME.pem / NAME.key in the harness's temp directory, issued to <paramref name="address"/> (default NAME@example.org).</summary>
    public static void Make(CliHarness cli, string name, bool ec, string? address = null, int days = 30)
    {
        string[] key = ec ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] : ["-newkey", "rsa:2048"];
        OpensslTool.Run(["req", "-x509", "-nodes", "-days", days.ToString(System.Globalization.CultureInfo.InvariantCulture), .. key,
            "-keyout", cli.Temp.File(name + ".key"), "-out", cli.Temp.File(name + ".pem"),
            "-subj", $"/CN={name}", "-addext", $"subjectAltName=email:{address ?? name + "@example.org"}",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment" + (ec ? ",keyAgreement" : string.Empty)]);
        File.SetUnixFileMode(cli.Temp.File(name + ".key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>The SHA-256 fingerprint as openssl prints it (what a member reads out to the owner).</summary>
    public static string Fingerprint(string pem) =>
        OpensslTool.Run("x509", "-in", pem, "-noout", "-fingerprint", "-sha256").Trim().Split('=')[1];
}
