using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Configuration;
using MilterSecureList.KeyServer;
using MilterSecureList.Testing;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>
/// keyd refuses a release certificate unfit for its jobs at --check-config and at start-up, with one line naming
/// [KeyServer] ReleaseCertificate: its keyUsage (when present) must allow wrapping the deposits (keyEncipherment for
/// RSA, keyAgreement for EC) and signing receipts (digitalSignature); the key must be the certificate's.
/// </summary>
public sealed class ReleaseCertificateCheckTests : IAsyncLifetime
{
    private readonly ReleaseWorld _world = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _world.DisposeAsync();

    public static TheoryData<string, X509KeyUsageFlags?, string?> Certificates => new()
    {
        { "rsa", X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature, null },
        { "rsa", null, null },
        { "ec", X509KeyUsageFlags.KeyAgreement | X509KeyUsageFlags.DigitalSignature, null },
        { "rsa", X509KeyUsageFlags.KeyEncipherment, "lacks digitalSignature (it signs receipts)" },
        { "rsa", X509KeyUsageFlags.DigitalSignature, "lacks keyEncipherment (deposits are wrapped to it)" },
        { "ec", X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature, "lacks keyAgreement (deposits are wrapped to it)" },
        { "rsa", X509KeyUsageFlags.KeyCertSign, "lacks keyEncipherment (deposits are wrapped to it) and digitalSignature (it signs receipts)" },
    };

    [Theory]
    [MemberData(nameof(Certificates))]
    public void TheReleaseCertificateMustAllowWrappingAndSigning(string keyType, X509KeyUsageFlags? usage, string? problem)
    {
        WriteReleasePair(keyType, usage);
        if (problem is null)
        {
            Assert.Equal(_world.ReleaseCertificateFile, KeyServerConfiguration.Load(_world.ConfigFile).ReleaseCertificate);
            return;
        }

        ConfigurationException e = Assert.Throws<ConfigurationException>(() => KeyServerConfiguration.Load(_world.ConfigFile));
        Assert.Matches(@"^\S*keyd\.ini:\d+: \[KeyServer\] ReleaseCertificate: its keyUsage \(", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AReleaseKeyThatIsNotTheCertificatesIsRefused()
    {
        string otherKey = Path.Combine(_world.Root, "other.key");
        using (var key = RSA.Create(2048))
        {
            File.WriteAllText(otherKey, key.ExportPkcs8PrivateKeyPem());
        }

        File.SetUnixFileMode(otherKey, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(_world.ConfigFile, File.ReadAllText(_world.ConfigFile).Replace(_world.ReleaseKeyFile, otherKey, StringComparison.Ordinal));
        ConfigurationException e = Assert.Throws<ConfigurationException>(() => KeyServerConfiguration.Load(_world.ConfigFile));
        Assert.Matches(@"^\S*keyd\.ini:\d+: \[KeyServer\] ReleaseKey: cannot load the release certificate and key: ", e.Message);
    }

    [Fact]
    public async Task CheckConfigAndStartUpBothFailWithOneLine()
    {
        WriteReleasePair("rsa", X509KeyUsageFlags.KeyEncipherment);
        foreach (string[] args in new[] { new[] { "--check-config", "--config", _world.ConfigFile }, ["--config", _world.ConfigFile] })
        {
            (int code, _, string error) = await ExternalTool.RunAsync("dotnet", [KeyServerProcess.Dll(), .. args]);
            Assert.Equal(1, code);
            string line = Assert.Single(error.Trim().Split('\n'));
            Assert.Matches(@"^\S*keyd\.ini:\d+: \[KeyServer\] ReleaseCertificate: its keyUsage \(KeyEncipherment\) lacks digitalSignature", line);
        }
    }

    /// <summary>Replaces the world's release certificate and key with a fresh self-signed pair.</summary>
    private void WriteReleasePair(string keyType, X509KeyUsageFlags? usage)
    {
        using AsymmetricAlgorithm key = keyType == "ec" ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
        CertificateRequest request = key is RSA rsa
            ? new CertificateRequest("CN=securelist-keyd release", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest("CN=securelist-keyd release", (ECDsa)key, HashAlgorithmName.SHA256);
        if (usage is { } u)
        {
            request.CertificateExtensions.Add(new X509KeyUsageExtension(u, critical: true));
        }

        using X509Certificate2 certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        File.WriteAllText(_world.ReleaseCertificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(_world.ReleaseKeyFile, key.ExportPkcs8PrivateKeyPem());
    }
}
