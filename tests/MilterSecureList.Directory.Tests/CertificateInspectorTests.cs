using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory.Tests.Fixtures;
using MilterSecureList.Testing;

namespace MilterSecureList.Directory.Tests;

public sealed class CertificateInspectorTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    [Fact]
    public void LoadFileReadsPemDerAndPkcs12()
    {
        using X509Certificate2 original = TestCertificates.Rsa("alice@example.org");
        string pem = TestCertificates.WritePem(original, _temp.File("a.pem"));
        string der = TestCertificates.WriteDer(original, _temp.File("a.der"));
        string p12 = TestCertificates.WritePkcs12(original, 2048, "pw", _temp.File("a.p12"));

        using X509Certificate2 fromPem = CertificateInspector.LoadFile(pem);
        using X509Certificate2 fromDer = CertificateInspector.LoadFile(der);
        using X509Certificate2 fromP12 = CertificateInspector.LoadFile(p12, "pw");

        Assert.Equal(original.RawData, fromPem.RawData);
        Assert.Equal(original.RawData, fromDer.RawData);
        Assert.Equal(original.RawData, fromP12.RawData);
        Assert.False(fromP12.HasPrivateKey);
    }

    [Fact]
    public void LoadFileReadsAnOpensslMadeCertificate()
    {
        // Independent producer: a certificate made by openssl, not by .NET.
        string key = _temp.File("o.key");
        string cert = _temp.File("o.pem");
        ExternalTool.MustRun("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=Olga", "-addext", "subjectAltName=email:olga@example.org", "-days", "30");

        using X509Certificate2 loaded = CertificateInspector.LoadFile(cert);

        CertificateInspector.RequireAcceptable(loaded, "OLGA@example.org", allowMismatch: false, Now, cert);
        Assert.Equal(["olga@example.org"], CertificateInspector.GetEmailAddresses(loaded));
    }

    [Theory]
    [InlineData("-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n")]
    [InlineData("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")]
    [InlineData("hello, I am not a certificate")]
    [InlineData("")]
    public void LoadFileRefusesGarbageWithOneLine(string content)
    {
        string path = _temp.File("bad.pem");
        File.WriteAllText(path, content);

        DirectoryException error = Assert.Throws<DirectoryException>(() => CertificateInspector.LoadFile(path));

        Assert.Equal(DirectoryError.BadCertificate, error.Reason);
        Assert.StartsWith(path, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void LoadFileRefusesAMissingFile()
    {
        DirectoryException error = Assert.Throws<DirectoryException>(() => CertificateInspector.LoadFile(_temp.File("nope.pem")));
        Assert.Contains("no such file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rsa1024IsUnusable()
    {
        using X509Certificate2 weak = TestCertificates.Rsa("a@example.org", bits: 1024);

        CertificateCheck check = CertificateInspector.Check(weak, Now);

        Assert.Equal(CertificateStatus.Unusable, check.Status);
        Assert.Contains("1024 bits is too small", check.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Rsa2048AndNistCurvesAreUsable()
    {
        using X509Certificate2 rsa = TestCertificates.Rsa("a@example.org");
        using X509Certificate2 p256 = TestCertificates.Ec("a@example.org", ECCurve.NamedCurves.nistP256);
        using X509Certificate2 p384 = TestCertificates.Ec("a@example.org", ECCurve.NamedCurves.nistP384);
        using X509Certificate2 p521 = TestCertificates.Ec("a@example.org", ECCurve.NamedCurves.nistP521);

        Assert.All(new[] { rsa, p256, p384, p521 }, c => Assert.Equal(CertificateStatus.Usable, CertificateInspector.Check(c, Now).Status));
        Assert.Equal("EC P-384", CertificateInspector.DescribeKey(p384));
    }

    [Fact]
    public void NonNistCurveIsTheWrongKeyType()
    {
        using X509Certificate2 k1 = TestCertificates.Ec("a@example.org", ECCurve.CreateFromFriendlyName("secp256k1"));

        CertificateCheck check = CertificateInspector.Check(k1, Now);

        Assert.Equal(CertificateStatus.Unusable, check.Status);
        Assert.Contains("1.3.132.0.10", check.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Ed25519IsTheWrongKeyType()
    {
        string cert = _temp.File("ed.pem");
        ExternalTool.MustRun("openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", _temp.File("ed.key"), "-out", cert, "-subj", "/CN=Ed", "-addext", "subjectAltName=email:ed@example.org", "-days", "30");
        using X509Certificate2 loaded = CertificateInspector.LoadFile(cert);

        DirectoryException error = Assert.Throws<DirectoryException>(() => CertificateInspector.RequireAcceptable(loaded, "ed@example.org", false, Now, cert));

        Assert.Contains("1.3.101.112", error.Message, StringComparison.Ordinal);
        Assert.Contains("cannot receive S/MIME mail", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyUsageWithoutEnciphermentIsUnusable()
    {
        using X509Certificate2 signOnly = TestCertificates.Rsa("a@example.org", keyUsage: X509KeyUsageFlags.DigitalSignature);
        using X509Certificate2 ecEncipherment = TestCertificates.Ec("a@example.org", ECCurve.NamedCurves.nistP256, X509KeyUsageFlags.KeyEncipherment);
        using X509Certificate2 noExtension = TestCertificates.Rsa("a@example.org", keyUsage: null);

        Assert.Contains("keyEncipherment", CertificateInspector.Check(signOnly, Now).Problem, StringComparison.Ordinal);
        Assert.Contains("keyAgreement", CertificateInspector.Check(ecEncipherment, Now).Problem, StringComparison.Ordinal);
        Assert.True(CertificateInspector.Check(noExtension, Now).IsUsable);
    }

    [Fact]
    public void ValidityIsCheckedAgainstTheGivenClock()
    {
        DateTimeOffset now = Now;
        using X509Certificate2 cert = TestCertificates.Rsa("a@example.org", notBefore: now.AddDays(-10), notAfter: now.AddDays(10));

        Assert.Equal(CertificateStatus.Usable, CertificateInspector.Check(cert, now).Status);
        Assert.Equal(CertificateStatus.Expired, CertificateInspector.Check(cert, now.AddDays(11)).Status);
        Assert.Equal(CertificateStatus.NotYetValid, CertificateInspector.Check(cert, now.AddDays(-11)).Status);
        Assert.Contains("expired on", CertificateInspector.Check(cert, now.AddDays(11)).Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void AddressComesFromSanOrSubjectEmailAndMismatchIsRefused()
    {
        using X509Certificate2 san = TestCertificates.Rsa("alice@example.org");
        using X509Certificate2 subjectOnly = TestCertificates.Rsa(null, subjectEmail: "bob@example.org");

        Assert.True(CertificateInspector.MatchesAddress(san, "Alice@Example.org"));
        Assert.True(CertificateInspector.MatchesAddress(subjectOnly, "bob@example.org"));
        DirectoryException error = Assert.Throws<DirectoryException>(() => CertificateInspector.RequireAcceptable(san, "mallory@example.org", false, Now, "x.pem"));
        Assert.Contains("issued to alice@example.org, not mallory@example.org", error.Message, StringComparison.Ordinal);
        CertificateInspector.RequireAcceptable(san, "mallory@example.org", allowMismatch: true, Now, "x.pem");
    }

    [Fact]
    public void ExpiredCertificateIsRefusedAtImport()
    {
        DateTimeOffset now = Now;
        using X509Certificate2 old = TestCertificates.Rsa("a@example.org", notBefore: now.AddYears(-2), notAfter: now.AddDays(-1));

        DirectoryException error = Assert.Throws<DirectoryException>(() => CertificateInspector.RequireAcceptable(old, "a@example.org", false, now, "old.pem"));

        Assert.Equal(DirectoryError.BadCertificate, error.Reason);
        Assert.Contains("expired", error.Message, StringComparison.Ordinal);
    }
}
