using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory.Tests.Fixtures;

namespace MilterSecureList.Directory.Tests;

public sealed class ListKeyStoreTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private ListKeyStore Store(string? passphraseFile = null) =>
        new(new KeysOptions { Directory = _temp.File("keys"), PassphraseFile = passphraseFile });

    [Fact]
    public void WriteKeyCreatesA0700DirectoryAnd0600File_RoundTrip()
    {
        (X509Certificate2 cert, AsymmetricAlgorithm key) = ListAdministration.GenerateListCertificate("l@example.org", ListKeyType.Rsa2048, DateTimeOffset.UtcNow);
        ListKeyStore store = Store();

        string file = store.WriteKey("l@example.org", key, DateTimeOffset.UtcNow);
        using AsymmetricAlgorithm loaded = store.ReadKey(file, cert);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(store.DirectoryPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(store.DirectoryPath, file)));
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(Path.Combine(store.DirectoryPath, file)), StringComparison.Ordinal);
        byte[] data = RandomNumberGenerator.GetBytes(32);
        byte[] wrapped = cert.GetRSAPublicKey()!.Encrypt(data, RSAEncryptionPadding.OaepSHA256);
        Assert.Equal(data, ((RSA)loaded).Decrypt(wrapped, RSAEncryptionPadding.OaepSHA256));
        key.Dispose();
        cert.Dispose();
    }

    [Fact]
    public void EcKeysLoadAsEcdhForKeyAgreement()
    {
        (X509Certificate2 cert, AsymmetricAlgorithm key) = ListAdministration.GenerateListCertificate("l@example.org", ListKeyType.P256, DateTimeOffset.UtcNow);
        ListKeyStore store = Store();
        string file = store.WriteKey("l@example.org", key, DateTimeOffset.UtcNow);

        using AsymmetricAlgorithm loaded = store.ReadKey(file, cert);

        Assert.IsAssignableFrom<ECDiffieHellman>(loaded);
        key.Dispose();
        cert.Dispose();
    }

    [Fact]
    public void PassphraseProtectedKeyIsEncryptedPkcs8_RoundTrip()
    {
        string passphrase = _temp.File("pass");
        File.WriteAllText(passphrase, "correct horse\n");
        File.SetUnixFileMode(passphrase, UnixFileMode.UserRead);
        (X509Certificate2 cert, AsymmetricAlgorithm key) = ListAdministration.GenerateListCertificate("l@example.org", ListKeyType.Rsa2048, DateTimeOffset.UtcNow);
        string file = Store(passphrase).WriteKey("l@example.org", key, DateTimeOffset.UtcNow);

        using AsymmetricAlgorithm loaded = Store(passphrase).ReadKey(file, cert);

        Assert.StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----", File.ReadAllText(Path.Combine(_temp.File("keys"), file)), StringComparison.Ordinal);
        DirectoryException noPassphrase = Assert.Throws<DirectoryException>(() => Store().ReadKey(file, cert));
        Assert.Contains("PassphraseFile is not set", noPassphrase.Message, StringComparison.Ordinal);
        File.SetUnixFileMode(passphrase, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(passphrase, "wrong");
        DirectoryException wrong = Assert.Throws<DirectoryException>(() => Store(passphrase).ReadKey(file, cert));
        Assert.Equal(DirectoryError.BadPrivateKey, wrong.Reason);
        key.Dispose();
        cert.Dispose();
    }

    [Fact]
    public void WorldReadableKeyFileIsRefused()
    {
        (X509Certificate2 cert, AsymmetricAlgorithm key) = ListAdministration.GenerateListCertificate("l@example.org", ListKeyType.P256, DateTimeOffset.UtcNow);
        ListKeyStore store = Store();
        string file = store.WriteKey("l@example.org", key, DateTimeOffset.UtcNow);
        string path = Path.Combine(store.DirectoryPath, file);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        DirectoryException error = Assert.Throws<DirectoryException>(() => store.ReadKey(file, cert));

        Assert.Equal(DirectoryError.InsecurePermissions, error.Reason);
        Assert.Contains($"chmod 600 {path}", error.Message, StringComparison.Ordinal);
        key.Dispose();
        cert.Dispose();
    }

    [Fact]
    public void GroupReadableKeyDirectoryIsRefused()
    {
        ListKeyStore store = Store();
        store.EnsureDirectory();
        File.SetUnixFileMode(store.DirectoryPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);

        DirectoryException error = Assert.Throws<DirectoryException>(store.CheckDirectory);

        Assert.Equal(DirectoryError.InsecurePermissions, error.Reason);
        Assert.Contains("0750", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyThatDoesNotMatchTheCertificateIsRefused()
    {
        (X509Certificate2 cert, AsymmetricAlgorithm key) = ListAdministration.GenerateListCertificate("l@example.org", ListKeyType.Rsa2048, DateTimeOffset.UtcNow);
        using RSA other = RSA.Create(2048);
        ListKeyStore store = Store();
        string file = store.WriteKey("l@example.org", other, DateTimeOffset.UtcNow);

        DirectoryException error = Assert.Throws<DirectoryException>(() => store.ReadKey(file, cert));

        Assert.Contains("does not match the certificate", error.Message, StringComparison.Ordinal);
        key.Dispose();
        cert.Dispose();
    }

    [Fact]
    public void AKeyFileThatIsADeviceIsRefusedWithoutReadingIt()
    {
        using X509Certificate2 cert = TestCertificates.Rsa("l@example.org");
        string device = _temp.File("zero.key.pem");
        File.CreateSymbolicLink(device, "/dev/zero");

        DirectoryException error = Assert.Throws<DirectoryException>(() => ListKeyStore.LoadPrivateKey(device, cert, () => null));

        Assert.Equal(DirectoryError.BadPrivateKey, error.Reason);
        Assert.Equal($"{device}: not a regular file, not a private key", error.Message);
    }

    [Fact]
    public void AKeyFileOverTheSizeLimitIsRefusedAfterReadingOnlyTheLimit()
    {
        using X509Certificate2 cert = TestCertificates.Rsa("l@example.org");
        string large = _temp.File("large.key.pem");
        File.WriteAllBytes(large, new byte[CertificateInspector.MaxInputBytes + 1]);

        DirectoryException error = Assert.Throws<DirectoryException>(() => ListKeyStore.LoadPrivateKey(large, cert, () => null));

        Assert.Equal(DirectoryError.BadPrivateKey, error.Reason);
        Assert.Equal($"{large}: larger than {CertificateInspector.MaxInputBytes} bytes, not a private key", error.Message);
    }

    [Fact]
    public void APassphraseFileOverTheSizeLimitIsRefusedWhenAKeyIsWritten()
    {
        string passphrase = _temp.File("passphrase");
        File.WriteAllBytes(passphrase, new byte[5000]);
        File.SetUnixFileMode(passphrase, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using RSA key = RSA.Create(2048);

        DirectoryException error = Assert.Throws<DirectoryException>(() => Store(passphrase).WriteKey("l@example.org", key, DateTimeOffset.UtcNow));

        Assert.Equal($"{passphrase}: larger than 4096 bytes, not a passphrase file", error.Message);
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("..")]
    [InlineData("")]
    public void KeyReferenceOutsideTheDirectoryIsRefused(string reference)
    {
        ListKeyStore store = Store();
        store.EnsureDirectory();
        using X509Certificate2 cert = TestCertificates.Rsa("l@example.org");

        DirectoryException error = Assert.Throws<DirectoryException>(() => store.ReadKey(reference, cert));

        Assert.Equal(DirectoryError.Corrupt, error.Reason);
    }
}

public sealed class ListCertificateGenerationTests
{
    [Theory]
    [InlineData(ListKeyType.Rsa2048, "RSA-2048", X509KeyUsageFlags.KeyEncipherment)]
    [InlineData(ListKeyType.Rsa3072, "RSA-3072", X509KeyUsageFlags.KeyEncipherment)]
    [InlineData(ListKeyType.Rsa4096, "RSA-4096", X509KeyUsageFlags.KeyEncipherment)]
    [InlineData(ListKeyType.P256, "EC P-256", X509KeyUsageFlags.KeyAgreement)]
    [InlineData(ListKeyType.P384, "EC P-384", X509KeyUsageFlags.KeyAgreement)]
    public void GeneratedListCertificatesAreSmimeEncryptionCertificates(ListKeyType type, string description, X509KeyUsageFlags usage)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        (X509Certificate2 cert, AsymmetricAlgorithm key) = ListAdministration.GenerateListCertificate("list@example.org", type, now);
        using (cert)
        using (key)
        {
            Assert.Equal(description, CertificateInspector.DescribeKey(cert));
            Assert.True(CertificateInspector.Check(cert, now).IsUsable);
            Assert.True(CertificateInspector.MatchesAddress(cert, "list@example.org"));
            Assert.Equal(usage, cert.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages);
            Assert.NotNull(cert.Extensions.OfType<X509SubjectKeyIdentifierExtension>().SingleOrDefault());
            Assert.False(cert.HasPrivateKey);
            Assert.Equal(cert.PublicKey.ExportSubjectPublicKeyInfo(), key.ExportSubjectPublicKeyInfo());
        }
    }
}
