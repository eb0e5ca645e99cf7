namespace MilterSecureList.Directory;

/// <summary>
/// A member of one list as stored. A member whose address is another list's address is a nested
/// list and has no certificates.
/// </summary>
public sealed class ListMember
{
    public ListMember(string address, IReadOnlyList<byte[]> certificates, bool useOaep = false, bool deliveryEnabled = true, bool? selfCopy = null)
    {
        Address = address;
        Certificates = certificates;
        UseOaep = useOaep;
        DeliveryEnabled = deliveryEnabled;
        SelfCopy = selfCopy;
    }

    public string Address { get; }

    /// <summary>DER-encoded certificates; the filter uses the best usable one.</summary>
    public IReadOnlyList<byte[]> Certificates { get; }

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
