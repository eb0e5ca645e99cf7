using System.Collections.Concurrent;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.Cms.Tests;

/// <summary>One member's private copy of a reader from scripts/install-newer-readers.sh: an NSS 3.110 database or a
/// gpgsm 2.4 home holding that member's key and nothing else, so a read proves that member's RecipientEncryptedKey.</summary>
public sealed class NewerReader : IDisposable
{
    private const string Password = "test-pass";
    private readonly TempDir _dir = new();
    private readonly string _nssDb;

    public NewerReader(TestIdentity member)
    {
        Member = member;
        // A current PKCS#12 (AES-256, PBKDF2): both readers import it, unlike Debian 12's gpgsm.
        string p12 = _dir.File(member.Name + ".p12");
        File.WriteAllBytes(p12, member.WithKey().ExportPkcs12(new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 2048), Password));

        _nssDb = "sql:" + _dir.File("nss");
        System.IO.Directory.CreateDirectory(_dir.File("nss"));
        Tool.MustRun(NewerReaders.Tool("certutil"), "-N", "-d", _nssDb, "--empty-password");
        Tool.MustRun(NewerReaders.Tool("pk12util"), "-i", p12, "-d", _nssDb, "-W", Password);

        GnupgHome = _dir.File("gnupg");
        if (OperatingSystem.IsLinux())
        {
            // gpg refuses a home directory others can read.
            System.IO.Directory.CreateDirectory(GnupgHome, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        // No smartcard daemon: the agent would otherwise look for the system's 2.2 scdaemon for keys it lacks. A fixed
        // (minimal) passphrase iteration count spares the agent its seconds-long calibration on a busy host.
        File.WriteAllText(Path.Combine(GnupgHome, "gpg-agent.conf"), "allow-loopback-pinentry\ndisable-scdaemon\ns2k-count 65536\n");
        File.WriteAllText(Path.Combine(GnupgHome, "gpgsm.conf"), "disable-crl-checks\ndisable-dirmngr\n");
        ToolResult r = Tool.Run(NewerReaders.Tool("gpgsm"), ["--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", p12],
            stdin: Password + "\n", env: GpgEnv);
        Assert.True(r.ExitCode == 0, "gpgsm 2.4 p12 import failed: " + r.StdErr);
    }

    public TestIdentity Member { get; }

    public string GnupgHome { get; }

    private Dictionary<string, string> GpgEnv => new() { ["GNUPGHOME"] = GnupgHome };

    /// <summary>NSS 3.110 <c>cmsutil -D</c>: the plaintext, or the failure (exit code and stderr).</summary>
    public (byte[]? Plain, string Error) Cmsutil(byte[] der)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), der);
        ToolResult r = Tool.Run(NewerReaders.Tool("cmsutil"), ["-D", "-i", dir.File("in"), "-o", dir.File("out"), "-d", _nssDb, "-p", ""]);
        return r.ExitCode == 0 ? (File.ReadAllBytes(dir.File("out")), "") : (null, $"cmsutil (libnss3 {NewerReaders.PackageVersion("libnss3")}) as {Member.Name} exited {r.ExitCode}: {r.StdErr.Trim()}");
    }

    /// <summary>gpgsm 2.4 <c>--decrypt</c>, judged by its status line DECRYPTION_OKAY (what gpgme and mail clients act on).
    /// gpgsm also exits 2 after a good decryption when it logged an error for another recipient's kari (a certificate it
    /// does not have), so the exit code alone does not say whether this member read the message.</summary>
    public (byte[]? Plain, string Error) Gpgsm(byte[] der)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("in"), der);
        ToolResult r = Tool.Run(NewerReaders.Tool("gpgsm"),
            ["--batch", "--status-fd", "1", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-d", "-o", dir.File("out"), dir.File("in")],
            stdin: Password + "\n", env: GpgEnv);
        bool ok = r.StdOut.Split('\n').Any(l => l.Trim() == "[GNUPG:] DECRYPTION_OKAY") && File.Exists(dir.File("out"));
        return ok ? (File.ReadAllBytes(dir.File("out")), "") : (null, $"gpgsm {NewerReaders.PackageVersion("gpgsm")} as {Member.Name} exited {r.ExitCode}: {r.StdErr.Trim()} | status: {r.StdOut.Trim()}");
    }

    public void Dispose()
    {
        Tool.Run(NewerReaders.Tool("gpgconf"), ["--kill", "gpg-agent"], env: GpgEnv);
        _dir.Dispose();
    }
}

/// <summary>Readers made on first use, one per member, shared by the tests of <see cref="NewerReaderKariTests"/>.</summary>
public sealed class NewerReaderFixture : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<NewerReader>> _readers = new();

    public NewerReader For(TestIdentity member) => _readers.GetOrAdd(member.Name, _ => new Lazy<NewerReader>(() => new NewerReader(member))).Value;

    public void Dispose()
    {
        foreach (Lazy<NewerReader> r in _readers.Values.Where(r => r.IsValueCreated))
        {
            r.Value.Dispose();
        }
    }
}

/// <summary>
/// Members inside a shared KeyAgreeRecipientInfo (one ephemeral key per curve, a RecipientEncryptedKey per member,
/// docs/design.md) and the newer readers from Debian 13 (scripts/install-newer-readers.sh): NSS 3.110 <c>cmsutil</c>,
/// the CMS engine of a current Thunderbird, reads as a member that is not the first key of its kari; gpgsm 2.4 reads
/// only as the first, and reads every member of one-key-per-member karis.
/// </summary>
public class NewerReaderKariTests : IClassFixture<NewerReaderFixture>
{
    private static readonly TestPki s_pki = TestPki.Shared;
    private readonly NewerReaderFixture _readers;

    public NewerReaderKariTests(NewerReaderFixture readers)
    {
        _readers = readers;
    }

    // member1 (RSA) first, then three P-256 members and two P-384 members: the engine writes member1's ktri, one kari
    // for P-256 and one for P-384, each kari listing its members in this order.
    private static TestIdentity Rsa => s_pki.Get("member1");

    private static TestIdentity[] P256 => [s_pki.Get("member3-ec", "p256"), s_pki.Get("member4-ec", "p256"), s_pki.Get("member5-ec", "p256")];

    private static TestIdentity[] P384 => [s_pki.Get("member-p384", "p384"), s_pki.Get("member-p384b", "p384")];

    private static (byte[] Plain, byte[] Post) RekeyedPost(string marker, bool shared)
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        byte[] plain = Plaintexts.MimeEntity(marker);
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-aes256");
        using ListKey listKey = list.ToListKey();
        CmsRecipient[] members = [.. new[] { Rsa }.Concat(P256).Concat(P384).Select(m => CmsRecipient.FromCertificate(m.Certificate))];
        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], members, new CmsRewrapOptions { ShareKeyAgreement = shared });
        EnvelopeAssert.EncryptedContentUnchanged(input, result.ContentInfo);
        return (plain, result.ContentInfo);
    }

    /// <summary>Where <paramref name="member"/>'s RecipientEncryptedKey sits: (index of its kari among the karis,
    /// its index inside that kari, how many keys that kari holds).</summary>
    private static (int Kari, int Index, int Count) Position(byte[] post, TestIdentity member)
    {
        KeyAgreeRecipientInfoAsn[] karis = [.. CmsEnvelopeInfo.Parse(post).Enveloped.RecipientInfos.Where(r => r.KeyAgree is not null).Select(r => r.KeyAgree!.Value)];
        for (int k = 0; k < karis.Length; k++)
        {
            IReadOnlyList<(RecipientIdentifierAsn Rid, ReadOnlyMemory<byte> EncryptedKey)> keys = karis[k].RecipientEncryptedKeys;
            for (int i = 0; i < keys.Count; i++)
            {
                if (keys[i].Rid.IssuerAndSerialNumber is { } ias && ias.Matches(member.Certificate))
                {
                    return (k, i, keys.Count);
                }
            }
        }

        throw new InvalidOperationException(member.Name + " has no RecipientEncryptedKey in the post");
    }

    private static void AssertReads(byte[] plain, (byte[]? Plain, string Error) read)
    {
        Assert.True(read.Plain is not null, read.Error);
        Assert.Equal(plain, read.Plain);
    }

    private void AssertBothRead(byte[] plain, byte[] post, TestIdentity member)
    {
        NewerReader reader = _readers.For(member);
        AssertReads(plain, reader.Cmsutil(post));
        AssertReads(plain, reader.Gpgsm(post));
    }

    [Fact]
    public void EveryMemberInsideSharedKarisReadsWithNss3110()
    {
        (byte[] plain, byte[] post) = RekeyedPost("shared kari, NSS 3.110", shared: true);
        Assert.Equal((0, 1, 3), Position(post, P256[1])); // the middle of three in the one P-256 kari
        Assert.Equal((1, 1, 2), Position(post, P384[1])); // the second of two in the one P-384 kari
        foreach (TestIdentity m in P256.Concat(P384)) // first, middle and last alike
        {
            AssertReads(plain, _readers.For(m).Cmsutil(post));
        }
    }

    /// <summary>
    /// gpgsm 2.4.7 with libksba 1.6.7 takes the first RecipientEncryptedKey of a kari as the only one (libksba finds
    /// the kari's encryptedKey by its path in the ASN.1 tree, with no index): the first member of each shared kari
    /// reads the post, every later member gets "error getting info" and DECRYPTION_FAILED. Lists whose EC members
    /// read with gpgsm (Kleopatra, KMail, GpgOL) need ec-shared-key=no (docs/design.md). This test fails the day a
    /// gpgsm reads the later members too, so the documentation can follow.
    /// </summary>
    [Fact]
    public void Gpgsm24ReadsASharedKariOnlyAsItsFirstMember()
    {
        (byte[] plain, byte[] post) = RekeyedPost("shared kari, gpgsm 2.4", shared: true);
        Assert.Equal((0, 0, 3), Position(post, P256[0]));
        Assert.Equal((1, 0, 2), Position(post, P384[0]));
        AssertReads(plain, _readers.For(P256[0]).Gpgsm(post));
        AssertReads(plain, _readers.For(P384[0]).Gpgsm(post));

        foreach (TestIdentity later in new[] { P256[1], P256[2], P384[1] })
        {
            (byte[]? read, string error) = _readers.For(later).Gpgsm(post);
            Assert.Null(read);
            Assert.Contains("[GNUPG:] DECRYPTION_FAILED", error, StringComparison.Ordinal);
            Assert.Contains("error getting info", error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AnRsaMemberReadsAPostThatAlsoCarriesSharedKaris()
    {
        // NSS 3.87 rejects such a whole message (GpgsmNssInteropTests); NSS 3.110 must not.
        (byte[] plain, byte[] post) = RekeyedPost("RSA member beside karis", shared: true);
        AssertBothRead(plain, post, Rsa);
    }

    [Fact]
    public void WithOneKeyPerMemberEveryEcMemberReadsWithBoth()
    {
        // ec-shared-key=no: each member has a kari of its own, so gpgsm's first-key-only reading is enough.
        (byte[] plain, byte[] post) = RekeyedPost("a kari per member, newer readers", shared: false);
        foreach (TestIdentity m in P256.Concat(P384))
        {
            Assert.Equal(0, Position(post, m).Index);
            Assert.Equal(1, Position(post, m).Count);
            AssertBothRead(plain, post, m);
        }
    }

    [Fact]
    public void AP256KeyThatIsNotAMemberReadsNothing()
    {
        (byte[] plain, byte[] post) = RekeyedPost("members only, newer readers", shared: true);
        NewerReader outsider = _readers.For(s_pki.Get("outsider-ec", "p256"));
        Assert.Null(outsider.Cmsutil(post).Plain);
        Assert.Null(outsider.Gpgsm(post).Plain);
        // The same post, the same readers, the first member's key: read (so the failure above is the key, not the reader).
        AssertBothRead(plain, post, P256[0]);
    }
}
