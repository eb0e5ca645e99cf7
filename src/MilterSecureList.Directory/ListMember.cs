using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Directory;

/// <summary>
/// A stored member certificate with what the import-time checks found, so that expansion can
/// decide usability without parsing 10,000 certificates (validity is re-checked against the clock
/// at every expansion; the key check does not change over time).
/// </summary>
public sealed class MemberCertificate
{
    public MemberCertificate(byte[] der, DateTimeOffset notBefore, DateTimeOffset notAfter, string? keyProblem)
    {
        Der = der;
        NotBefore = notBefore;
        NotAfter = notAfter;
        KeyProblem = keyProblem;
    }

    public byte[] Der { get; }

    public DateTimeOffset NotBefore { get; }

    public DateTimeOffset NotAfter { get; }

    /// <summary>Null when the key type, size and keyUsage allow S/MIME encryption; else why not.</summary>
    public string? KeyProblem { get; }

    public static MemberCertificate From(X509Certificate2 certificate)
    {
        CertificateCheck key = CertificateInspector.CheckKey(certificate);
        return new MemberCertificate(
            certificate.RawData,
            certificate.NotBefore.ToUniversalTime(),
            certificate.NotAfter.ToUniversalTime(),
            key.IsUsable ? null : key.Problem);
    }

    /// <summary>For a certificate that just passed <see cref="CertificateInspector.RequireAcceptable"/> (key known good).</summary>
    internal static MemberCertificate FromAccepted(X509Certificate2 certificate) =>
        new(certificate.RawData, certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime(), null);

    /// <summary>The same verdict as <see cref="CertificateInspector.Check"/>, from the stored facts.</summary>
    public CertificateCheck Check(DateTimeOffset now)
    {
        if (KeyProblem is not null)
        {
            return new CertificateCheck(CertificateStatus.Unusable, KeyProblem);
        }

        if (now < NotBefore)
        {
            return new CertificateCheck(CertificateStatus.NotYetValid, $"certificate not valid before {NotBefore:yyyy-MM-dd HH:mm:ss}Z");
        }

        if (now > NotAfter)
        {
            return new CertificateCheck(CertificateStatus.Expired, $"certificate expired on {NotAfter:yyyy-MM-dd HH:mm:ss}Z");
        }

        return new CertificateCheck(CertificateStatus.Usable, null);
    }
}

/// <summary>
/// A member of one list as stored. A member whose address is another list's address is a nested
/// list and has no certificates.
/// </summary>
public sealed class ListMember
{
    public ListMember(string address, IReadOnlyList<MemberCertificate> certificates, bool useOaep = false, bool deliveryEnabled = true, bool? selfCopy = null)
    {
        Address = address;
        Certificates = certificates;
        UseOaep = useOaep;
        DeliveryEnabled = deliveryEnabled;
        SelfCopy = selfCopy;
    }

    public string Address { get; }

    /// <summary>The member's certificates; expansion picks the best usable one.</summary>
    public IReadOnlyList<MemberCertificate> Certificates { get; }

    /// <summary>The certificate expansion would pick at NOW (usable first, then latest expiry), or null.</summary>
    public MemberCertificate? BestCertificate(DateTimeOffset now, out CertificateCheck check)
    {
        MemberCertificate? best = null;
        check = new CertificateCheck(CertificateStatus.Missing, "no certificate");
        foreach (MemberCertificate candidate in Certificates)
        {
            CertificateCheck candidateCheck = candidate.Check(now);
            if (best is null
                || (candidateCheck.IsUsable && !check.IsUsable)
                || (candidateCheck.IsUsable == check.IsUsable && candidate.NotAfter > best.NotAfter))
            {
                best = candidate;
                check = candidateCheck;
            }
        }

        return best;
    }

    /// <summary>Wrap the CEK with RSAES-OAEP instead of PKCS#1 v1.5 for this member.</summary>
    public bool UseOaep { get; }

    /// <summary>False: still a member (may post to members-only lists) but receives no copies.</summary>
    public bool DeliveryEnabled { get; }

    /// <summary>Null: the list's <c>self-copy</c> option decides.</summary>
    public bool? SelfCopy { get; }
}

/// <summary>One list key as stored: the certificate and a reference to its private-key file.</summary>
public sealed class ListKeyRecord
{
    public ListKeyRecord(long id, byte[] certificate, string keyFile, bool isCurrent, bool isRetired, DateTimeOffset createdAt)
    {
        Id = id;
        Certificate = certificate;
        KeyFile = keyFile;
        IsCurrent = isCurrent;
        IsRetired = isRetired;
        CreatedAt = createdAt;
    }

    public long Id { get; }

    /// <summary>DER-encoded certificate (what senders encrypt to).</summary>
    public byte[] Certificate { get; }

    /// <summary>File name (no directory part) under <see cref="KeysOptions.Directory"/>.</summary>
    public string KeyFile { get; }

    /// <summary>The key <c>list export-cert</c> publishes; exactly one per list.</summary>
    public bool IsCurrent { get; }

    /// <summary>Retired keys are no longer used to decrypt.</summary>
    public bool IsRetired { get; }

    public DateTimeOffset CreatedAt { get; }
}
