using System.Text.RegularExpressions;
using MilterSecureList.Configuration;
using MilterSecureList.Daemon.Options;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Gateway.Tests;

/// <summary>[Milter] Handlers and [Gateway] in milter.ini: valid values bind, bad ones name file, section and key.</summary>
public sealed class GatewayConfigurationTests : IDisposable
{
    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("msl-gwconf-").FullName;

    public void Dispose() => System.IO.Directory.Delete(_dir, recursive: true);

    private DaemonConfiguration Load(string text)
    {
        string path = Path.Combine(_dir, "milter.ini");
        File.WriteAllText(path, "[Listener]\nSocket = unix:" + Path.Combine(_dir, "m.sock") + "\n" + text);
        return DaemonConfiguration.Load(path);
    }

    [Fact]
    public void HandlersAndGatewayKeysBind()
    {
        DaemonConfiguration c = Load("[Milter]\nHandlers = Gateway , lists\n[Gateway]\nAuthservId = mx.example.org\nEncrypt = required\nSign = never\nOpaque = yes\n" +
            "InvalidSignature = warn\nHarvest = no\nDomainPolicy = partner.example:opportunistic:always, old.example:never\nCaValidityDays = 365\n");
        Assert.Equal("gateway,lists", c.Get<MilterOptions>().Handler);
        GatewayOptions g = c.Get<GatewaySection>().Options;
        Assert.Equal(("mx.example.org", EncryptPolicy.Required, SignPolicy.Never, true, InvalidSignatureAction.Warn, false, 365),
            (g.AuthservId, g.Encrypt, g.Sign, g.Opaque, g.InvalidSignature, g.Harvest, g.CaValidityDays));
        Assert.Equal(new DomainPolicy(EncryptPolicy.Never, null), g.Domains["old.example"]);
        Assert.Equal((EncryptPolicy.Opportunistic, SignPolicy.Always), g.PolicyFor(null, "x@partner.example"));
        Assert.Equal((EncryptPolicy.Required, SignPolicy.Never), g.PolicyFor(null, "x@other.example"));
    }

    [Fact]
    public void KeyServersAndTheTrustOfTheFetchBindWithoutAKeyServerOfOurOwn()
    {
        string trust = Path.Combine(_dir, "keyd-ca.pem");
        using (var key = System.Security.Cryptography.ECDsa.Create())
        {
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=keyd CA", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
            using var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(trust, ca.ExportCertificatePem());
        }

        DaemonConfiguration c = Load($"[Gateway]\nKeyServers = https://Keys.Example.org:8443/, https://other.example/release/\n[KeyRelease]\nTrustedCertificate = {trust}\nTimeout = 3s\n");
        GatewayOptions g = c.Get<GatewaySection>().Options;
        Assert.Equal(["https://keys.example.org:8443", "https://other.example/release"], g.KeyServers);
        Assert.True(g.FetchesFrom("https://keys.example.org:8443/"));
        Assert.True(g.FetchesFrom("https://other.example/release"));
        Assert.False(g.FetchesFrom("https://keys.example.org/"));
        Assert.False(g.FetchesFrom("https://other.example/"));
        KeyReleaseSection k = c.Get<KeyReleaseSection>();
        Assert.Null(k.Url);
        Assert.Equal((trust, TimeSpan.FromSeconds(3)), (k.TrustedCertificate, k.Timeout));
        using var fetcher = k.CreateReleaseFetcher(TimeProvider.System);
    }

    [Theory]
    [InlineData("[Milter]\nHandlers = lists, gateway\n", "[Milter] Handlers: 'lists, gateway' is not one of gateway, lists, gateway, lists")]
    [InlineData("[Gateway]\nEncrypt = sometimes\n", "[Gateway] Encrypt: 'sometimes' is not one of required, opportunistic, never")]
    [InlineData("[Gateway]\nDomainPolicy = partner.example\n", "[Gateway] DomainPolicy: 'partner.example' is not DOMAIN:ENCRYPT[:SIGN]")]
    [InlineData("[Gateway]\nTrustAnchors = /nonexistent/cas.pem\n", "[Gateway] TrustAnchors: /nonexistent/cas.pem does not exist")]
    [InlineData("[Gateway]\nCaKey = /etc/ca.key\n", "[Gateway] CaKey: CaCertificate and CaKey go together")]
    [InlineData("[Gateway]\nAuthservId = a b\n", "[Gateway] AuthservId: 'a b' is not a single token")]
    [InlineData("[Gateway]\nEncrpyt = required\n", "[Gateway] Encrpyt: unknown key")]
    [InlineData("[Gateway]\nKeyServers = https://keys.example.org:8443/, keys.example.org\n", "[Gateway] KeyServers: 'keys.example.org' is not an https URL")]
    [InlineData("[KeyRelease]\nTrustedCertificate = /nonexistent/keyd-ca.pem\n", "[KeyRelease] TrustedCertificate: '/nonexistent/keyd-ca.pem' does not exist")]
    public void BadValuesNameTheKey(string text, string expected)
    {
        ConfigurationException e = Assert.Throws<ConfigurationException>(() => Load(text));
        // FILE:LINE: [Section] Key: problem, as every configuration error.
        Assert.Matches("milter\\.ini:[0-9]+: " + Regex.Escape(expected), e.Message);
    }
}
