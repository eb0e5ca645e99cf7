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
/// One dictionary per stage (docs/protocol.md §6). A MAIL-stage macro packet drops the values of all
/// later stages, as libmilter does (mi_clr_macros); ABORT drops all message stages; QUIT_NC drops all.
/// </summary>
public sealed class MacroTable : IMacroLookup
{
    private const int StageCount = 8;
    private const int FirstMessageStage = 2; // Mail
    private readonly Dictionary<string, string>?[] _stages = new Dictionary<string, string>?[StageCount];

    public string? QueueId => TryGetValue("i", out string v) ? v : null;

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

    public void Set(MilterCommandCode forCommand, IReadOnlyList<KeyValuePair<string, string>> macros)
    {
        int stage = StageOf(forCommand);
        if (stage == FirstMessageStage)
        {
            ClearMessageStages();
        }

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

    public void ClearMessageStages()
    {
        for (int i = FirstMessageStage; i < StageCount - 1; i++)
        {
            _stages[i]?.Clear();
        }
    }

    public void ClearAll()
    {
        foreach (Dictionary<string, string>? d in _stages)
        {
            d?.Clear();
        }
    }

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
