using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;
using MilterSecureList.Directory;
using MilterSecureList.KeyRelease;

namespace MilterSecureList.Daemon.Options;

/// <summary>[KeyRelease]: the key server that holds the keys of release lists (docs/key-release.md §6). Optional: without
/// <c>Url</c>, posts to release lists tempfail.</summary>
public sealed class KeyReleaseSection : OptionsSection
{
    public override string SectionName => "KeyRelease";

    public Uri? Url { get; private set; }

    public string ReleaseCertificate { get; private set; } = "";

    public string TrustedCertificate { get; private set; } = "";

    public string ClientCertificate { get; private set; } = "";

    public string ClientKey { get; private set; } = "";

    public TimeSpan Timeout { get; private set; } = TimeSpan.FromSeconds(10);

    public override void Load(IniSection section)
    {
        string url = section.GetString("Url", "");
        Timeout = section.GetDuration("Timeout", Timeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(2));
        if (url.Length == 0)
        {
            // Read so that they count as known keys; without a key server of our own they mean nothing, except the
            // TLS trust the gateway's automatic fetch uses for [Gateway] KeyServers (docs/gateway.md).
            foreach (string key in new[] { "ReleaseCertificate", "ClientCertificate", "ClientKey" })
            {
                _ = section.Value(key);
            }

            if (section.Value("TrustedCertificate") is { Length: > 0 })
            {
                TrustedCertificate = Required(section, "TrustedCertificate");
                CheckTrust(section);
            }

            return;
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out Uri? parsed) || parsed.Scheme != Uri.UriSchemeHttps || parsed.Query.Length > 0)
        {
            throw section.Error("Url", $"'{url}' is not an https URL such as https://keys.example.org:8443/");
        }

        Url = parsed.AbsolutePath.EndsWith('/') ? parsed : new Uri(parsed + "/");
        ReleaseCertificate = Required(section, "ReleaseCertificate");
        TrustedCertificate = Required(section, "TrustedCertificate");
        ClientCertificate = Required(section, "ClientCertificate");
        ClientKey = Required(section, "ClientKey");
        try
        {
            ListKeyStore.CheckPrivateFile(ClientKey);
            using X509Certificate2 pair = X509Certificate2.CreateFromPemFile(ClientCertificate, ClientKey);
            _ = CmsRecipient.FromCertificate(CertificateInspector.LoadFile(ReleaseCertificate));
            _ = CertificateInspector.LoadFile(TrustedCertificate);
        }
        catch (Exception e) when (e is DirectoryException or CryptographicException or CmsRewrapException or IOException)
        {
            throw section.Error("ClientKey", e.Message.ReplaceLineEndings(" "));
        }
    }

    /// <summary>The gateway's fetcher for key-release posts (docs/gateway.md): TLS trust from TrustedCertificate (the
    /// system's trust store when it is not set), no client certificate (the request itself is signed), Timeout.</summary>
    public ReleaseFetcher CreateReleaseFetcher(TimeProvider time)
    {
        X509Certificate2Collection? trust = null;
        if (TrustedCertificate.Length > 0)
        {
            trust = [];
            trust.ImportFromPemFile(TrustedCertificate);
        }

        return new ReleaseFetcher(new KeyReleaseClient(trust, null, Timeout), time);
    }

    private void CheckTrust(IniSection section)
    {
        try
        {
            var trust = new X509Certificate2Collection();
            trust.ImportFromPemFile(TrustedCertificate);
            if (trust.Count == 0)
            {
                throw section.Error("TrustedCertificate", $"'{TrustedCertificate}' holds no PEM certificate");
            }
        }
        catch (CryptographicException e)
        {
            throw section.Error("TrustedCertificate", e.Message.ReplaceLineEndings(" "));
        }
    }

    /// <summary>The deposit client, or null when no key server is configured.</summary>
    public HttpKeyDepository? CreateDepository()
    {
        if (Url is null)
        {
            return null;
        }

        X509Certificate2 client = X509Certificate2.CreateFromPemFile(ClientCertificate, ClientKey);
        var trust = new X509Certificate2Collection();
        trust.ImportFromPemFile(TrustedCertificate);
        return new HttpKeyDepository(Url, CmsRecipient.FromCertificate(CertificateInspector.LoadFile(ReleaseCertificate)),
            new KeyReleaseClient(trust, client, Timeout));
    }

    private static string Required(IniSection section, string key)
    {
        string path = section.Value(key) ?? throw section.Error(key, "is required when Url is set");
        return File.Exists(path) ? path : throw section.Error(key, $"'{path}' does not exist");
    }
}
