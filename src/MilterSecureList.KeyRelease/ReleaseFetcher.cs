using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Gateway;

namespace MilterSecureList.KeyRelease;

/// <summary>
/// The member's side of a release (docs/key-release.md §5): a ReleaseRequest for a post's entry, signed with the
/// member's certificate and key (RSA or ECDSA), posted to the entry's key server. <c>securelist release fetch</c> uses
/// <see cref="FetchAsync"/> for one member by hand; the gateway uses the instance for its users
/// (<see cref="IKeyReleaseFetcher"/>, docs/gateway.md "Key-release posts").
/// </summary>
public sealed class ReleaseFetcher(KeyReleaseClient client, TimeProvider time) : IKeyReleaseFetcher, IDisposable
{
    /// <summary>Fresh random bytes per request: the key server refuses a nonce it has seen (check 9).</summary>
    public const int NonceLength = 32;

    /// <summary>The member's RecipientInfo (DER), or null when the key server refused (403).</summary>
    /// <exception cref="KeyServerUnavailableException">Unreachable, or an answer outside the protocol.</exception>
    /// <exception cref="UriFormatException">The entry's key server is no URL.</exception>
    public static async Task<byte[]?> FetchAsync(KeyReleaseClient client, KeyReleaseEntry entry, string member, X509Certificate2 certificate, AsymmetricAlgorithm key, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(entry);
        byte[] signed = new ReleaseRequest(entry.MessageId, member, RandomNumberGenerator.GetBytes(NonceLength), now, entry.Binding).Sign(certificate, key);
        ReleaseHttpResponse? reply = await client.ReleaseAsync(new Uri(entry.KeyServer), signed, cancellationToken).ConfigureAwait(false);
        return reply?.RecipientInfo;
    }

    /// <summary>The gateway's call: blocks its (thread-pool) caller for at most the client's timeout.</summary>
    public KeyReleaseAnswer Fetch(KeyReleaseEntry entry, string member, X509Certificate2 certificate, AsymmetricAlgorithm key)
    {
        try
        {
            byte[]? recipientInfo = FetchAsync(client, entry, member, certificate, key, time.GetUtcNow(), CancellationToken.None).GetAwaiter().GetResult();
            return recipientInfo is null
                ? new KeyReleaseAnswer(KeyReleaseOutcome.Refused, null, "refused")
                : new KeyReleaseAnswer(KeyReleaseOutcome.Released, recipientInfo, null);
        }
        catch (KeyServerUnavailableException e)
        {
            return new KeyReleaseAnswer(KeyReleaseOutcome.Unavailable, null, e.Message);
        }
        catch (UriFormatException e)
        {
            // Not reached for a URL the gateway was told to fetch from; kept total, as the seam promises.
            return new KeyReleaseAnswer(KeyReleaseOutcome.Unavailable, null, $"key server URL: {e.Message}");
        }
    }

    public void Dispose() => client.Dispose();
}
