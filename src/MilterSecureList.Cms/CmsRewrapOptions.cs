namespace MilterSecureList.Cms;

/// <summary>Limits and choices for one re-wrap. Defaults are safe for a milter.</summary>
public sealed class CmsRewrapOptions
{
    public static CmsRewrapOptions Default { get; } = new();

    /// <summary>Largest ContentInfo accepted (bytes). Default 256 MiB.</summary>
    public int MaxInputBytes { get; init; } = 256 * 1024 * 1024;

    /// <summary>Most RecipientInfos accepted in the input. Default 100,000.</summary>
    public int MaxInputRecipientInfos { get; init; } = 100_000;

    /// <summary>Keep RecipientInfos that do not name a list key (other direct recipients). Default true.</summary>
    public bool KeepOtherRecipientInfos { get; init; } = true;

    /// <summary>Members at or above this count are wrapped with <c>Parallel.For</c>. Default 64.</summary>
    public int ParallelThreshold { get; init; } = 64;

    /// <summary>Sort the RecipientInfos SET OF as DER requires (X.690 §11.6) instead of keeping member order.
    /// With a DER input the whole output is then strict DER. Default false: readers accept any order (BER), and member
    /// order makes the output deterministic in layout and cheaper for 10,000-member lists.</summary>
    public bool SortRecipientInfos { get; init; }

    /// <summary>EC members on the same curve share one ephemeral key and one KeyAgreeRecipientInfo with a
    /// RecipientEncryptedKey each (RFC 5652 §6.2.2, RFC 5753 §3.1.1): one key generation per curve per message instead
    /// of one per member. Default true; false writes one ephemeral key and KeyAgreeRecipientInfo per member.</summary>
    public bool ShareKeyAgreement { get; init; } = true;

    /// <summary>Degree of parallelism for large lists; -1 = all cores.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;
}
