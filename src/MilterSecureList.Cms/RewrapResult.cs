namespace MilterSecureList.Cms;

/// <summary>The outcome of a re-wrap. Deliberately carries no hint of whether the list key's unwrap "worked":
/// a failed PKCS#1 v1.5 unwrap continues with a random key and looks exactly the same (no padding oracle).</summary>
public sealed class RewrapResult
{
    internal RewrapResult(byte[] contentInfo, int membersWrapped, bool isAuthEnveloped, int keptRecipientInfos,
        ListKey matchedKey, int version, string contentEncryptionAlgorithm)
    {
        ContentInfo = contentInfo;
        MembersWrapped = membersWrapped;
        IsAuthEnveloped = isAuthEnveloped;
        KeptRecipientInfos = keptRecipientInfos;
        MatchedKey = matchedKey;
        Version = version;
        ContentEncryptionAlgorithm = contentEncryptionAlgorithm;
    }

    /// <summary>The new ContentInfo: definite-length (DER) outer structure; verbatim (possibly BER) inner parts.</summary>
    public byte[] ContentInfo { get; }

    public int MembersWrapped { get; }

    public bool IsAuthEnveloped { get; }

    /// <summary>RecipientInfos copied unchanged (not for the list).</summary>
    public int KeptRecipientInfos { get; }

    /// <summary>The list key whose RecipientInfo was used.</summary>
    public ListKey MatchedKey { get; }

    /// <summary>The CMSVersion written (RFC 5652 §6.1; always 0 for AuthEnvelopedData).</summary>
    public int Version { get; }

    /// <summary>The sender's content cipher OID (kept unchanged).</summary>
    public string ContentEncryptionAlgorithm { get; }
}
