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

    /// <summary>Degree of parallelism for large lists; -1 = all cores.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;
}
