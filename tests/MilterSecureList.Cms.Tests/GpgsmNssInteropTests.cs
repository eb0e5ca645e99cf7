using MilterSecureList.Cms.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.Cms.Tests;

/// <summary>Throwaway gpgsm home and NSS database holding the CA, the list certificate and member1's key.
/// gpgsm 2.2 needs a legacy-PBE PKCS#12 (docs/cms.md §10) and a trustlist entry for the test CA.</summary>
public sealed class GpgsmNssFixture : IDisposable
{
    private const string Password = "test-pass";
    private readonly TempDir _dir = new();

    public GpgsmNssFixture()
    {
        TestPki pki = TestPki.Shared;
        List = pki.Get("list-rsa", "rsa");
        Member1 = pki.Get("member1");
        GnupgHome = Path.Combine(_dir.Path, "gnupg");
        Assert.True(OperatingSystem.IsLinux(), "the gpgsm/NSS interop tests run on Linux");
        if (OperatingSystem.IsLinux())
        {
            // gpg refuses a home directory others can read.
            System.IO.Directory.CreateDirectory(GnupgHome, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        File.WriteAllText(Path.Combine(GnupgHome, "gpg-agent.conf"), "allow-loopback-pinentry\n");
        File.WriteAllText(Path.Combine(GnupgHome, "gpgsm.conf"), "disable-crl-checks\n");
        Gpgsm("--batch", "--import", pki.Ca.CertPath);
        Gpgsm("--batch", "--import", List.CertPath);
        string p12 = pki.ExportLegacyPkcs12(Member1, Password);
        ToolResult r = Tool.Run("gpgsm", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12], stdin: Password + "\n", env: GpgEnv);
        Assert.True(r.ExitCode == 0, "gpgsm p12 import failed: " + r.StdErr);
        string fpr = pki.Ca.Certificate.GetCertHashString(); // SHA-1, as gpgsm's trustlist wants
        File.WriteAllText(Path.Combine(GnupgHome, "trustlist.txt"), string.Join(':', Enumerable.Range(0, 20).Select(i => fpr.Substring(2 * i, 2))) + " S relax\n");

        NssDb = "sql:" + Path.Combine(_dir.Path, "nss");
        System.IO.Directory.CreateDirectory(Path.Combine(_dir.Path, "nss"));
        Tool.MustRun("certutil", "-N", "-d", NssDb, "--empty-password");
        Tool.MustRun("certutil", "-A", "-d", NssDb, "-n", "ca", "-t", "C,C,C", "-i", pki.Ca.CertPath);
        Tool.MustRun("certutil", "-A", "-d", NssDb, "-n", "list", "-t", ",,", "-i", List.CertPath);
        Tool.MustRun("pk12util", "-i", p12, "-d", NssDb, "-W", Password);
    }

    public TestIdentity List { get; }

    public TestIdentity Member1 { get; }

    public string GnupgHome { get; }

    public string NssDb { get; }

    public Dictionary<string, string> GpgEnv => new() { ["GNUPGHOME"] = GnupgHome };

    public ToolResult Gpgsm(params string[] args) => Tool.MustRunEnv("gpgsm", GpgEnv, args);

    public byte[] GpgsmEncryptToList(byte[] plain)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), plain);
        Gpgsm("--batch", "-r", List.Email, "-e", "-o", dir.File("out"), dir.File("in"));
        return File.ReadAllBytes(dir.File("out"));
    }

    public byte[]? GpgsmDecrypt(byte[] der)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), der);
        ToolResult r = Tool.Run("gpgsm", ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", "-o", dir.File("out"), dir.File("in")],
            stdin: Password + "\n", env: GpgEnv);
        LastError = "gpgsm: " + r.StdErr;
        return r.ExitCode == 0 ? File.ReadAllBytes(dir.File("out")) : null;
    }

    public string LastError { get; private set; } = "";

    public byte[] CmsutilEncryptToList(byte[] plain)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), plain);
        Tool.MustRun("cmsutil", "-E", "-r", List.Email, "-i", dir.File("in"), "-o", dir.File("out"), "-d", NssDb);
        return File.ReadAllBytes(dir.File("out"));
    }

    public byte[]? CmsutilDecrypt(byte[] der)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), der);
        ToolResult r = Tool.Run("cmsutil", ["-D", "-i", dir.File("in"), "-o", dir.File("out"), "-d", NssDb, "-p", ""]);
        LastError = "cmsutil: " + r.StdErr;
        return r.ExitCode == 0 ? File.ReadAllBytes(dir.File("out")) : null;
    }

    public void Dispose()
    {
        Tool.Run("gpgconf", ["--kill", "gpg-agent"], env: GpgEnv);
        _dir.Dispose();
    }
}

/// <summary>gpgsm 2.2 and NSS cmsutil (the engine inside Thunderbird) as senders and readers.</summary>
public class GpgsmNssInteropTests : IClassFixture<GpgsmNssFixture>
{
    private readonly GpgsmNssFixture _f;

    public GpgsmNssInteropTests(GpgsmNssFixture fixture)
    {
        _f = fixture;
    }

    private RewrapResult RewrapForMembers(byte[] input, bool withEcMember)
    {
        TestPki pki = TestPki.Shared;
        using ListKey listKey = _f.List.ToListKey();
        var members = new List<CmsRecipient>
        {
            CmsRecipient.FromCertificate(_f.Member1.Certificate),
            CmsRecipient.FromCertificate(pki.Get("member2").Certificate, preferOaep: true),
        };
        if (withEcMember)
        {
            members.Add(CmsRecipient.FromCertificate(pki.Get("member3-ec", "p256").Certificate));
        }

        return SessionKeyRewrapper.Rewrap(input, [listKey], members);
    }

    private void AssertEveryReaderGets(byte[] plain, byte[] input)
    {
        TestPki pki = TestPki.Shared;
        // RSA members only: every reader, including NSS 3.87 (old Thunderbird) and gpgsm 2.2.
        RewrapResult result = RewrapForMembers(input, withEcMember: false);
        EnvelopeAssert.EncryptedContentUnchanged(input, result.ContentInfo);
        Assert.True(plain.AsSpan().SequenceEqual(_f.GpgsmDecrypt(result.ContentInfo)), _f.LastError);
        Assert.True(plain.AsSpan().SequenceEqual(_f.CmsutilDecrypt(result.ContentInfo)), _f.LastError);
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, _f.Member1));
        Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(result.ContentInfo, _f.Member1));
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, pki.Get("member2")));
        Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(result.ContentInfo, pki.Get("member2")));

        // With an EC member (kari) in the same message: NSS 3.87 rejects the whole message (SEC_ERROR_BAD_DER,
        // docs/cms.md §10), so only gpgsm, openssl and EnvelopedCms are asked.
        RewrapResult mixed = RewrapForMembers(input, withEcMember: true);
        Assert.True(plain.AsSpan().SequenceEqual(_f.GpgsmDecrypt(mixed.ContentInfo)), _f.LastError);
        Assert.Equal(plain, Peers.OpensslDecrypt(mixed.ContentInfo, _f.Member1));
        Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(mixed.ContentInfo, _f.Member1));
        Assert.Equal(plain, Peers.OpensslDecrypt(mixed.ContentInfo, pki.Get("member3-ec", "p256")));
    }

    [Fact]
    public void GpgsmSenderBerAes128IsReadableByAllReaders()
    {
        byte[] plain = Plaintexts.MimeEntity("from gpgsm");
        byte[] input = _f.GpgsmEncryptToList(plain);
        Assert.Equal(0x80, input[1]); // gpgsm writes BER with indefinite lengths
        Assert.Equal(Oids.Aes128Cbc, SessionKeyRewrapper.Inspect(input).ContentEncryptionAlgorithm);
        AssertEveryReaderGets(plain, input);
    }

    [Fact]
    public void CmsutilSenderIsReadableByAllReaders()
    {
        byte[] plain = Plaintexts.MimeEntity("from NSS");
        byte[] input = _f.CmsutilEncryptToList(plain);
        AssertEveryReaderGets(plain, input);
    }

    [Theory]
    [InlineData("-aes256")]
    [InlineData("-des3")]
    [InlineData("-aes128", "-stream")]
    [InlineData("-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha1")]
    [InlineData("-aes128", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_label:0a0b0c")]
    public void OpensslSenderIsReadableByGpgsmAndNss(params string[] args)
    {
        byte[] plain = Plaintexts.MimeEntity("from openssl");
        byte[] input = Peers.OpensslEncrypt(plain, [_f.List], args);
        AssertEveryReaderGets(plain, input);
    }

    [Fact]
    public void NonMemberReadersFail()
    {
        byte[] plain = Plaintexts.MimeEntity("members only");
        byte[] input = Peers.OpensslEncrypt(plain, [_f.List], "-aes256");
        TestPki pki = TestPki.Shared;
        using ListKey listKey = _f.List.ToListKey();
        // member1 (whose key gpgsm and NSS hold) is not wrapped for: neither tool may decrypt.
        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(pki.Get("member2").Certificate)]);
        Assert.Null(_f.GpgsmDecrypt(result.ContentInfo));
        Assert.Null(_f.CmsutilDecrypt(result.ContentInfo));
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, pki.Get("member2")));
    }
}
