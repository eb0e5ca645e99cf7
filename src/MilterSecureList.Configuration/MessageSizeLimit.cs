namespace MilterSecureList.Configuration;

/// <summary>
/// <c>[Milter] MaxMessageSize</c>: the largest body the daemon accepts, and the largest CMS object the list
/// filter decodes. <c>securelist check</c> reads the same key so that an offline check refuses what the daemon
/// refuses.
/// </summary>
public static class MessageSizeLimit
{
    public const string Section = "Milter";
    public const string Key = "MaxMessageSize";
    public const long Default = 50L * 1024 * 1024;
    public const long Min = 1024;
    public const long Max = 4L << 30;

    public static long Read(IniSection milter) => milter.GetSize(Key, Default, Min, Max);
}
