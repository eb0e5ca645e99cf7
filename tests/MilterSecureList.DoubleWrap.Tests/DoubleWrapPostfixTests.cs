using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.DoubleWrap;
using MilterSecureList.Cms;
using CmsDoubleWrap = MilterSecureList.Cms.DoubleWrap;

namespace MilterSecureList.DoubleWrap.Tests;

/// <summary>The double-wrap properties (docs/double-wrap.md §3), each checked on what went through a
/// real Postfix and securelist-milter in <see cref="DoubleWrapScenario"/>; members use the securelist CLI.</summary>
public sealed class DoubleWrapPostfixTests(DoubleWrapScenario scenario) : IClassFixture<DoubleWrapScenario>
{
    private const string List = DoubleWrapWorld.List;

    private DoubleWrapWorld World => scenario.World;

    [Fact]
    public void EveryMemberDecryptsBothPostsWithAVerifiedSignature()
    {
        Assert.Equal(DoubleWrapScenario.Recipients.Select(m => $"<{DoubleWrapWorld.Address(m)}>").Order(StringComparer.Ordinal),
            scenario.Copy1.Recipients.Order(StringComparer.Ordinal));
        foreach (string m in DoubleWrapScenario.Members)
        {
            AssertMemberReads(m, scenario.Received1, scenario.Text1);
            AssertMemberReads(m, scenario.Received2, scenario.Text2);
        }

        Assert.Equal(0, scenario.DaemonExitCode);
        Assert.DoesNotContain("warning: milter", scenario.MailLog, StringComparison.Ordinal);
    }

    [Fact]
    public void TheServersKeyWithItsWholeStateCannotRecoverTheContent()
    {
        (X509Certificate2 sCert, AsymmetricAlgorithm sKey) = scenario.ServerKey();
        using (sCert)
        using (sKey)
        {
            byte[] cms1 = ReadCms(scenario.Sent1);
            Assert.Throws<CmsRewrapException>(() => CmsDecryptor.Decrypt(cms1, sCert, sKey));
            Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(cms1, sCert, sKey, _ => null));

            // What the server learns: the inner blob. Every 32-byte window of everything it has fails on it.
            byte[] blob1 = ServerView.InnerBlob(cms1, (RSA)sKey);
            Assert.Equal(40, blob1.Length); // RFC 5649 wrap of the 32-byte AES-256-GCM key
            using (var control = Aes.Create())
            {
                // Positive control: the blob is the real one (the list key opens it), so the search is not vacuous.
                control.Key = scenario.ListKey1;
                Assert.Equal(32, control.DecryptKeyWrapPadded(blob1).Length);
                Assert.Throws<InvalidOperationException>(() => ServerView.TryEveryWindow(blob1, [0, .. scenario.ListKey1, 0], "control"));
            }

            long windows = 0;
            int files = 0;
            foreach (string file in scenario.ServerStateFiles())
            {
                files++;
                windows += ServerView.TryEveryWindow(blob1, File.ReadAllBytes(file), file);
            }

            windows += ServerView.TryEveryWindow(blob1, Encoding.UTF8.GetBytes(scenario.DaemonOutput), "daemon output");
            Assert.True(windows > 10_000 && files >= 4, $"only {windows} candidate keys in {files} files tried: is the server state there?");
        }
    }

    [Fact]
    public void NoListKeyEverAppearsInTheServersDataKeysDatabaseOrLog()
    {
        Assert.True(File.Exists(World.DatabasePath) && File.Exists(World.LogPath), "the database and the daemon log must exist");
        Assert.True(new FileInfo(World.LogPath).Length > 0, "the daemon log is empty: nothing was searched");
        byte[][] keys = [scenario.ListKey1, ReadKey(scenario.Key2)];
        foreach (string file in scenario.ServerStateFiles())
        {
            byte[] data = File.ReadAllBytes(file);
            foreach (byte[] form in keys.SelectMany(ServerView.Encodings))
            {
                Assert.True(data.AsSpan().IndexOf(form) < 0, $"a list key appears in the server's {file}");
            }
        }

        byte[] output = Encoding.UTF8.GetBytes(scenario.DaemonOutput);
        Assert.All(keys.SelectMany(ServerView.Encodings), form => Assert.True(output.AsSpan().IndexOf(form) < 0, "a list key appears in the daemon output"));
    }

    [Fact]
    public void ARemovedMemberGetsNoCopyAndCannotOpenACurrentMembersCopyWithTheKeyItKept()
    {
        Assert.Contains("rotate its list key", scenario.RemoveError, StringComparison.Ordinal);
        Assert.DoesNotContain(scenario.Copy1.Recipients, r => r.Contains("dave", StringComparison.Ordinal));
        Assert.DoesNotContain(scenario.Copy2.Recipients, r => r.Contains("dave", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(World.ListKeys("dave"), "crypto@lists.dw.test.1.key")), "dave kept the epoch-1 key");

        CliRun daveTry = DecryptAs("dave", scenario.Received1);
        Assert.True(daveTry.ExitCode == 2, $"dave: exit {daveTry.ExitCode} {daveTry.Error}");
        Assert.Contains("cannot decrypt", daveTry.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void AfterARotationTheOldListKeyPlusTheServersKeyCannotOpenNewPosts()
    {
        // Dave got no epoch-2 key message.
        Assert.Equal(DoubleWrapScenario.Recipients.Select(m => DoubleWrapWorld.Address(m) + ".eml").Order(StringComparer.Ordinal),
            System.IO.Directory.GetFiles(scenario.Dist2).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        (X509Certificate2 sCert, AsymmetricAlgorithm sKey) = scenario.ServerKey();
        using var server = new ListKey(sCert, sKey);
        using X509Certificate2 daveCert = X509Certificate2.CreateFromPem(File.ReadAllText(World.Cert("dave")));
        using AsymmetricAlgorithm daveKey = Directory.ListKeyStore.LoadPrivateKey(World.Key("dave"), daveCert, () => null);

        // The server colludes with dave: it re-wraps a post for dave's certificate.
        // Before the rotation this works (the documented price of not rotating; it also shows the attack is real) ...
        RewrapResult forDave1 = CmsDoubleWrap.Rewrap(ReadCms(scenario.Sent1), [server], [CmsRecipient.FromCertificate(daveCert)]);
        byte[] colluded = CmsDoubleWrap.Decrypt(forDave1.ContentInfo, daveCert, daveKey, _ => scenario.ListKey1);
        Assert.Contains(scenario.Text1, Encoding.UTF8.GetString(SmimeEntities.CheckSignature(colluded).Content), StringComparison.Ordinal);

        // ... after it, the old key fails the RFC 5649 integrity check on the new post.
        RewrapResult forDave2 = CmsDoubleWrap.Rewrap(ReadCms(scenario.Sent2), [server], [CmsRecipient.FromCertificate(daveCert)]);
        CmsRewrapException stale = Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(forDave2.ContentInfo, daveCert, daveKey, _ => scenario.ListKey1));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, stale.Reason);
        CmsRewrapException missing = Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(forDave2.ContentInfo, daveCert, daveKey,
            id => id.Epoch == 1 ? scenario.ListKey1 : null));
        Assert.Contains("epoch 2", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACertificateInjectedOnTheServerIsRefusedByTheOwnersRotationAndItsHolderReadsNothing()
    {
        // The owner was told: rotate exits 3 and names the injected certificate by its fingerprint.
        Assert.True(scenario.RotateExitCode == 3, $"listkey rotate: exit {scenario.RotateExitCode} {scenario.RotateError}");
        Assert.Contains($"REFUSED {DoubleWrapWorld.Address(DoubleWrapScenario.Victim)}: certificate not accepted", scenario.RotateError, StringComparison.Ordinal);
        Assert.Contains(scenario.InjectedFingerprint, scenario.RotateError, StringComparison.Ordinal);

        using X509Certificate2 injected = X509Certificate2.CreateFromPem(File.ReadAllText(World.Cert("mallory")));
        using AsymmetricAlgorithm injectedKey = Directory.ListKeyStore.LoadPrivateKey(World.Key("mallory"), injected, () => null);

        // The attacker's certificate opens none of the epoch-2 key messages; erin's own opens hers (she imported epoch 2).
        foreach (string message in System.IO.Directory.GetFiles(scenario.Dist2))
        {
            byte[] cms = ReadCms(File.ReadAllBytes(message));
            Assert.Throws<CmsRewrapException>(() => CmsDecryptor.Decrypt(cms, injected, injectedKey));
        }

        Assert.True(File.Exists(Path.Combine(World.ListKeys(DoubleWrapScenario.Victim), ListKeyDirectory.FileName(List, 2))), "erin holds epoch 2");

        // The milter did wrap erin's copy of the second post for the injected certificate (the server decides where
        // copies go), so the attacker removes that outer layer, and still lacks the list key of epoch 2.
        byte[] copy2 = ReadCms(Encoding.UTF8.GetBytes(scenario.Copy2.Headers + "\n" + scenario.Copy2.Body));
        CmsRewrapException locked = Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(copy2, injected, injectedKey, _ => null));
        Assert.Contains("epoch 2", locked.Message, StringComparison.Ordinal);
        CmsRewrapException stale = Assert.Throws<CmsRewrapException>(() => CmsDoubleWrap.Decrypt(copy2, injected, injectedKey, _ => scenario.ListKey1));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, stale.Reason);

        // What the server can do is deny erin her copy (documented): it is not for her certificate.
        CliRun erin = DecryptAs(DoubleWrapScenario.Victim, scenario.Received2);
        Assert.True(erin.ExitCode == 2, $"erin: exit {erin.ExitCode} {erin.Error}");
    }

    [Fact]
    public void TamperingWithTheContentIsDetected()
    {
        byte[] delivered = ReadCms(Encoding.UTF8.GetBytes(scenario.Copy2.Headers + "\n" + scenario.Copy2.Body));
        foreach (int offset in new[] { 40, 500, delivered.Length / 2 })
        {
            byte[] tampered = (byte[])delivered.Clone();
            tampered[^offset] ^= 0x01; // inside the encrypted content or its tag
            string file = Path.Combine(World.Root, $"tampered-{offset}.eml");
            File.WriteAllBytes(file, SmimeEntities.WriteEncrypted([new MimeKit.Header("Subject", "tampered")], tampered, authEnveloped: true));
            string output = Path.Combine(World.Root, "carol.out");
            File.Delete(output);
            CliRun run = DecryptAs("carol", file);
            Assert.True(run.ExitCode == 1, $"tampered copy (offset -{offset}): exit {run.ExitCode} {run.Error}{run.Output}");
            Assert.Contains("cannot decrypt", run.Error, StringComparison.Ordinal);
            Assert.False(File.Exists(output), "a tampered post must not produce any output");
        }

        // The untampered copy still opens (the failure above is the tampering, not the setup).
        AssertMemberReads("carol", scenario.Received2, scenario.Text2);
    }

    private CliRun DecryptAs(string member, string file) =>
        World.Cli("decrypt", "--cert", World.Cert(member), "--key", World.Key(member), "--list-keys", World.ListKeys(member),
            "--in", file, "--out", Path.Combine(World.Root, member + ".out"));

    private void AssertMemberReads(string member, string file, string text)
    {
        CliRun run = DecryptAs(member, file);
        Assert.True(run.ExitCode == 0, $"{member} cannot decrypt {file}: exit {run.ExitCode} {run.Error}");
        Assert.Contains("signature: verified: signed by", run.Output, StringComparison.Ordinal);
        Assert.Contains("CN=alice", run.Output, StringComparison.Ordinal);
        Assert.Equal($"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n", File.ReadAllText(Path.Combine(World.Root, member + ".out")));
    }

    private static byte[] ReadKey(string file)
    {
        using ListKeyFile key = ListKeyFile.Load(file);
        return (byte[])key.Key.Clone();
    }

    private static byte[] ReadCms(byte[] message)
    {
        using var stream = new MemoryStream(message);
        return SmimeEntities.ReadEncryptedCms(stream);
    }
}
