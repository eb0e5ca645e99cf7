namespace MilterSecureList.Gateway;

/// <summary>
/// A harvested certificate for CORRESPONDENT (fingerprint NEWFINGERPRINT) differs from the pinned one
/// (PINNEDFINGERPRINT, or null when none is active any more) and waits for an operator; USER is the gateway user
/// whose mail brought it and who should hear about it (docs/gateway.md, Pinning).
/// </summary>
public sealed record PendingCertificateChange(string User, string Correspondent, string NewFingerprint, string? PinnedFingerprint);

/// <summary>Tells gateway users about events that concern them. Implementations never block the message path.</summary>
public interface IGatewayNotifier
{
    void CertificateChangePending(PendingCertificateChange change);
}
