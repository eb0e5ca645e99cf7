namespace MilterSecureList.Configuration;

/// <summary>
/// <c>[Milter] MaxHeaderBytes</c>: the most header bytes the daemon keeps per message. <c>securelist check</c> reads
/// the same key, so an offline check refuses a header block the daemon would refuse.
/// </summary>
public static class HeaderSizeLimit
{
    public const string Section = "Milter";
    public const string Key = "MaxHeaderBytes";
    public const long Default = 1024 * 1024;
    public const long Min = 64 * 1024;
    public const long Max = 1L << 30;

    public static long Read(IniSection milter) => milter.GetSize(Key, Default, Min, Max);
}
