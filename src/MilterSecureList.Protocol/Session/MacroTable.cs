using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>Read access to the macros the MTA sent (names as configured: "i", "{daemon_name}").</summary>
public interface IMacroLookup
{
    /// <summary>Looks a macro up by name; "{name}" and "name" are tried both ways. Most recent stage wins.</summary>
    bool TryGetValue(string name, out string value);

    /// <summary>The Postfix queue id (macro <c>i</c>), or null before Postfix assigned one.</summary>
    string? QueueId { get; }
}

/// <summary>
/// One dictionary per stage (docs/protocol.md §6). A macro packet replaces the values of its stage, as
/// libmilter does; a MAIL-stage packet also drops the values of all later stages (mi_clr_macros); ABORT drops
/// all message stages; QUIT_NC drops all. The bytes each stage holds are counted for the session's budget.
/// </summary>
public sealed class MacroTable : IMacroLookup
{
    private const int StageCount = 8;
    private const int FirstMessageStage = 2; // Mail
    private readonly Dictionary<string, string>?[] _stages = new Dictionary<string, string>?[StageCount];
    private readonly long[] _bytes = new long[StageCount];
    private readonly bool[] _dropped = new bool[StageCount];

    public string? QueueId => TryGetValue("i", out string v) ? v : null;

    /// <summary>Macro bytes held, as received (names and values with their NULs).</summary>
    public long Bytes => _bytes.Sum();

    /// <summary>True while a stage's values are missing because its packet was over the budget (<see cref="Drop"/>).</summary>
    public bool AnyDropped => Array.IndexOf(_dropped, true) >= 0;

    internal static int StageOf(MilterCommandCode code) => code switch
    {
        MilterCommandCode.Connect => 0,
        MilterCommandCode.Helo => 1,
        MilterCommandCode.Mail => 2,
        MilterCommandCode.Recipient => 3,
        MilterCommandCode.Data => 4,
        MilterCommandCode.Header or MilterCommandCode.EndOfHeaders => 5,
        MilterCommandCode.Body or MilterCommandCode.EndOfMessage => 6,
        _ => 7, // Unknown and anything else
    };

    /// <summary>The bytes held if a packet of <paramref name="bytes"/> for <paramref name="forCommand"/> replaced its stage.</summary>
    internal long BytesAfterSet(MilterCommandCode forCommand, long bytes)
    {
        int stage = StageOf(forCommand);
        long kept = 0;
        for (int i = 0; i < StageCount; i++)
        {
            bool dropped = i == stage || (stage == FirstMessageStage && IsMessageStage(i));
            kept += dropped ? 0 : _bytes[i];
        }

        return kept + bytes;
    }

    /// <summary>Replaces the stage's values (an empty list clears it); <paramref name="bytes"/> is the packet's size.</summary>
    public void Set(MilterCommandCode forCommand, IReadOnlyList<KeyValuePair<string, string>> macros, long bytes = 0)
    {
        int stage = StageOf(forCommand);
        if (stage == FirstMessageStage)
        {
            ClearMessageStages();
        }

        _stages[stage]?.Clear();
        _dropped[stage] = false;
        _bytes[stage] = macros.Count == 0 ? 0 : bytes;
        if (macros.Count == 0)
        {
            return;
        }

        Dictionary<string, string> d = _stages[stage] ??= new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, string> kv in macros)
        {
            d[kv.Key] = kv.Value;
        }
    }

    /// <summary>
    /// A packet for the stage arrived but was not kept (over the budget): the stage's old values are gone too,
    /// since the packet would have replaced them, and <see cref="AnyDropped"/> is true until the stage is set again
    /// or cleared.
    /// </summary>
    public void Drop(MilterCommandCode forCommand)
    {
        Set(forCommand, []);
        _dropped[StageOf(forCommand)] = true;
    }

    public void ClearMessageStages()
    {
        for (int i = FirstMessageStage; i < StageCount - 1; i++)
        {
            _stages[i]?.Clear();
            _bytes[i] = 0;
            _dropped[i] = false;
        }
    }

    public void ClearAll()
    {
        foreach (Dictionary<string, string>? d in _stages)
        {
            d?.Clear();
        }

        Array.Clear(_bytes);
        Array.Clear(_dropped);
    }

    private static bool IsMessageStage(int stage) => stage is >= FirstMessageStage and < StageCount - 1;

    public bool TryGetValue(string name, out string value)
    {
        string alt = name.Length > 2 && name[0] == '{' && name[^1] == '}' ? name[1..^1] : "{" + name + "}";
        for (int i = StageCount - 1; i >= 0; i--)
        {
            Dictionary<string, string>? d = _stages[i];
            if (d is not null && d.Count > 0 && (d.TryGetValue(name, out value!) || d.TryGetValue(alt, out value!)))
            {
                return true;
            }
        }

        value = string.Empty;
        return false;
    }
}
