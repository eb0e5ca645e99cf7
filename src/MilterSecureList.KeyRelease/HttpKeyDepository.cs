using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Filter;

namespace MilterSecureList.KeyRelease;

/// <summary>The milter's deposits over HTTPS with its client certificate (docs/key-release.md §4.1).</summary>
public sealed class HttpKeyDepository : IKeyDepository, IDisposable
{
    private readonly KeyReleaseClient _client;
    private readonly Uri _url;

    public HttpKeyDepository(Uri url, CmsRecipient releaseCertificate, KeyReleaseClient client)
    {
        _url = url;
        ReleaseCertificate = releaseCertificate;
        _client = client;
    }

    public string KeyServerUrl => _url.ToString();

    public CmsRecipient ReleaseCertificate { get; }

    public Task DepositAsync(KeyReleaseSeal seal, CancellationToken cancellationToken) =>
        _client.DepositAsync(_url, KeyReleaseDeposit.From(seal), cancellationToken);

    public void Dispose() => _client.Dispose();
}
