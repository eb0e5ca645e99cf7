using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;

namespace MilterSecureList.Filter;

/// <summary>
/// Where the list filter leaves a release list's key material (docs/key-release.md §4.1). The key server's HTTPS client
/// implements it (MilterSecureList.KeyRelease); the daemon wires it from [KeyRelease]. Without one, posts to release
/// lists tempfail.
/// </summary>
public interface IKeyDepository
{
    /// <summary>The URL members are told to ask (written into each post).</summary>
    string KeyServerUrl { get; }

    /// <summary>The key server's release certificate: deposits are wrapped to it.</summary>
    CmsRecipient ReleaseCertificate { get; }

    /// <summary>Returns only when the key server has stored the deposit; throws on anything else.</summary>
    Task DepositAsync(KeyReleaseSeal seal, CancellationToken cancellationToken);
}
