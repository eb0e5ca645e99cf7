using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Directory;

/// <summary>Whether a member's certificate can be encrypted to now.</summary>
public enum CertificateStatus
{
    Usable,
    /// <summary>The member has no certificate.</summary>
    Missing,
    Expired,
    NotYetValid,
    /// <summary>Wrong key type or size, or keyUsage forbids encryption.</summary>
    Unusable,
}

/// <summary>
/// The result of expanding a list: every reachable member once (case-insensitive), nested lists
/// resolved. Members without a usable certificate are listed too, with their
/// <see cref="ExpandedMember.Status"/>, so the filter can apply the list's policy.
/// </summary>
public sealed record ExpandedList(MailingList List, IReadOnlyList<ExpandedMember> Members, IReadOnlyList<string> Problems)
{
    /// <summary>True when ADDRESS is a member (at any nesting depth); used for members-only posting.</summary>
    public bool Contains(string address)
    {
        foreach (ExpandedMember member in Members)
        {
            if (EmailAddress.Comparer.Equals(member.Address, address))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>One member after expansion. Instances are shared by the cache: treat as read-only.</summary>
public sealed class ExpandedMember
{
    private readonly ReadOnlyMemory<byte>? _der;
    private X509Certificate2? _certificate;

    public ExpandedMember(
        string address,
        X509Certificate2? certificate,
        bool useOaep,
        bool selfCopy,
        bool deliveryEnabled,
        CertificateStatus status,
        string? problem,
        string viaList)
    {
        Address = address;
        _certificate = certificate;
        _der = certificate?.RawData;
        UseOaep = useOaep;
        SelfCopy = selfCopy;
        DeliveryEnabled = deliveryEnabled;
        Status = status;
        Problem = problem;
        ViaList = viaList;
    }

    /// <summary>Directory-internal: the certificate is parsed from DER on first use.</summary>
    internal ExpandedMember(
        string address,
        ReadOnlyMemory<byte>? certificateDer,
        bool useOaep,
        bool selfCopy,
        bool deliveryEnabled,
        CertificateStatus status,
        string? problem,
        string viaList)
        : this(address, (X509Certificate2?)null, useOaep, selfCopy, deliveryEnabled, status, problem, viaList)
    {
        _der = certificateDer;
    }

    public string Address { get; }

    /// <summary>
    /// The best certificate's DER (usable if any is); null when <see cref="Status"/> is Missing. What the list filter
    /// wraps for: it reads the few fields it needs from these bytes, with no X.509 or key object per member
    /// (docs/design.md, "Lists of 100,000 members").
    /// </summary>
    public ReadOnlyMemory<byte>? CertificateDer => _der;

    /// <summary>
    /// The best certificate as an object (usable if any is); null when <see cref="Status"/> is Missing.
    /// Parsed on first access and then kept for the life of the cached expansion (an OpenSSL object of a few KB):
    /// for callers that look at a few members; the list filter uses <see cref="CertificateDer"/>.
    /// </summary>
    public X509Certificate2? Certificate
    {
        get
        {
            if (_certificate is null && _der is { } der)
            {
                X509Certificate2 parsed = X509CertificateLoader.LoadCertificate(der.Span);
                if (Interlocked.CompareExchange(ref _certificate, parsed, null) is not null)
                {
                    parsed.Dispose();
                }
            }

            return _certificate;
        }
    }

    public bool UseOaep { get; }

    /// <summary>Resolved: the member's setting, else the list's <c>self-copy</c> option, else yes.</summary>
    public bool SelfCopy { get; }

    /// <summary>False: a member for posting purposes, but gets no copy.</summary>
    public bool DeliveryEnabled { get; }

    public CertificateStatus Status { get; }

    /// <summary>One-line reason when <see cref="Status"/> is not Usable.</summary>
    public string? Problem { get; }

    /// <summary>The list whose member entry produced this member (the top list or a nested one).</summary>
    public string ViaList { get; }
}
