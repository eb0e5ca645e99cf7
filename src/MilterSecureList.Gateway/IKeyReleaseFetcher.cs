using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.KeyRelease;

namespace MilterSecureList.Gateway;

/// <summary>What a key server said to a gateway user's release request (docs/key-release.md §4.2).</summary>
public enum KeyReleaseOutcome
{
    /// <summary>200: the user's RecipientInfo came back.</summary>
    Released,

    /// <summary>403: not a member now, revoked, expired, or any other refusal (the key server never says which).</summary>
    Refused,

    /// <summary>Unreachable, TLS refused, timeout, an answer outside the protocol: worth trying again later.</summary>
    Unavailable,
}

/// <summary>The answer: the RecipientInfo (DER) when released, a one-line problem otherwise (never key material).</summary>
public sealed record KeyReleaseAnswer(KeyReleaseOutcome Outcome, byte[]? RecipientInfo, string? Problem);

/// <summary>
/// The gateway's automatic fetch for key-release posts (docs/gateway.md, "Key-release posts"): asks the entry's key
/// server for a user's key, signing the request with the user's own certificate and key as
/// <c>securelist release fetch</c> does. Implemented over HTTPS in MilterSecureList.KeyRelease; the gateway sees only
/// this seam, so it needs no HTTP and tests can answer in memory. Which key servers may be asked at all is the
/// processor's decision (<c>[Gateway] KeyServers</c>), made before this is called.
/// </summary>
public interface IKeyReleaseFetcher
{
    /// <summary>Asks ENTRY's key server for MEMBER's RecipientInfo. Never throws for a network or protocol problem:
    /// that is <see cref="KeyReleaseOutcome.Unavailable"/>.</summary>
    KeyReleaseAnswer Fetch(KeyReleaseEntry entry, string member, X509Certificate2 certificate, AsymmetricAlgorithm key);
}
