namespace MilterSecureList.Protocol.Wire;

/// <summary>Command codes the MTA sends (SMFIC_*, sendmail mfdef.h). See docs/protocol.md §3.</summary>
public enum MilterCommandCode : byte
{
    OptionNegotiation = (byte)'O', // SMFIC_OPTNEG
    Macro = (byte)'D',             // SMFIC_MACRO
    Connect = (byte)'C',           // SMFIC_CONNECT
    Helo = (byte)'H',              // SMFIC_HELO
    Mail = (byte)'M',              // SMFIC_MAIL
    Recipient = (byte)'R',         // SMFIC_RCPT
    Data = (byte)'T',              // SMFIC_DATA
    Header = (byte)'L',            // SMFIC_HEADER
    EndOfHeaders = (byte)'N',      // SMFIC_EOH
    Body = (byte)'B',              // SMFIC_BODY
    EndOfMessage = (byte)'E',      // SMFIC_BODYEOB
    Abort = (byte)'A',             // SMFIC_ABORT
    Quit = (byte)'Q',              // SMFIC_QUIT
    QuitNewConnection = (byte)'K', // SMFIC_QUIT_NC
    Unknown = (byte)'U',           // SMFIC_UNKNOWN
}

/// <summary>Response codes the milter sends (SMFIR_*). See docs/protocol.md §4.</summary>
public enum MilterResponseCode : byte
{
    OptionNegotiation = (byte)'O', // SMFIC_OPTNEG reply
    Continue = (byte)'c',          // SMFIR_CONTINUE
    Accept = (byte)'a',            // SMFIR_ACCEPT
    Reject = (byte)'r',            // SMFIR_REJECT
    Tempfail = (byte)'t',          // SMFIR_TEMPFAIL
    Discard = (byte)'d',           // SMFIR_DISCARD
    ReplyCode = (byte)'y',         // SMFIR_REPLYCODE
    Shutdown = (byte)'4',          // SMFIR_SHUTDOWN
    Skip = (byte)'s',              // SMFIR_SKIP
    Progress = (byte)'p',          // SMFIR_PROGRESS
    Quarantine = (byte)'q',        // SMFIR_QUARANTINE
    AddHeader = (byte)'h',         // SMFIR_ADDHEADER
    InsertHeader = (byte)'i',      // SMFIR_INSHEADER
    ChangeHeader = (byte)'m',      // SMFIR_CHGHEADER
    AddRecipient = (byte)'+',      // SMFIR_ADDRCPT
    AddRecipientWithArgs = (byte)'2', // SMFIR_ADDRCPT_PAR
    DeleteRecipient = (byte)'-',   // SMFIR_DELRCPT
    ChangeFrom = (byte)'e',        // SMFIR_CHGFROM
    ReplaceBody = (byte)'b',       // SMFIR_REPLBODY
}

/// <summary>Action flags (SMFIF_*, the second uint32 of OPTNEG).</summary>
[Flags]
public enum MilterActions : uint
{
    None = 0,
    AddHeaders = 0x001,        // SMFIF_ADDHDRS (h, i)
    ChangeBody = 0x002,        // SMFIF_CHGBODY (b)
    AddRecipient = 0x004,      // SMFIF_ADDRCPT (+)
    DeleteRecipient = 0x008,   // SMFIF_DELRCPT (-)
    ChangeHeaders = 0x010,     // SMFIF_CHGHDRS (m)
    Quarantine = 0x020,        // SMFIF_QUARANTINE (q)
    ChangeFrom = 0x040,        // SMFIF_CHGFROM (e)
    AddRecipientWithArgs = 0x080, // SMFIF_ADDRCPT_PAR (2)
    SetSymbolList = 0x100,     // SMFIF_SETSYMLIST (macro lists in the OPTNEG reply)
    All = 0x1FF,
}

/// <summary>Protocol flags (SMFIP_*, the third uint32 of OPTNEG).</summary>
[Flags]
public enum MilterProtocolOptions : uint
{
    None = 0,
    NoConnect = 0x1,        // SMFIP_NOCONNECT
    NoHelo = 0x2,           // SMFIP_NOHELO
    NoMail = 0x4,           // SMFIP_NOMAIL
    NoRecipient = 0x8,      // SMFIP_NORCPT
    NoBody = 0x10,          // SMFIP_NOBODY
    NoHeaders = 0x20,       // SMFIP_NOHDRS
    NoEndOfHeaders = 0x40,  // SMFIP_NOEOH
    NoReplyHeader = 0x80,   // SMFIP_NR_HDR (SMFIP_NOHREPL)
    NoUnknown = 0x100,      // SMFIP_NOUNKNOWN
    NoData = 0x200,         // SMFIP_NODATA
    Skip = 0x400,           // SMFIP_SKIP
    RecipientRejected = 0x800, // SMFIP_RCPT_REJ
    NoReplyConnect = 0x1000,   // SMFIP_NR_CONN
    NoReplyHelo = 0x2000,      // SMFIP_NR_HELO
    NoReplyMail = 0x4000,      // SMFIP_NR_MAIL
    NoReplyRecipient = 0x8000, // SMFIP_NR_RCPT
    NoReplyData = 0x10000,     // SMFIP_NR_DATA
    NoReplyUnknown = 0x20000,  // SMFIP_NR_UNKN
    NoReplyEndOfHeaders = 0x40000, // SMFIP_NR_EOH
    NoReplyBody = 0x80000,     // SMFIP_NR_BODY
    HeaderLeadingSpace = 0x100000, // SMFIP_HDR_LEADSPC
}

/// <summary>Macro stage numbers as used in the OPTNEG macro-list trailer (SMFIM_*). EOM (5) comes before EOH (6).</summary>
public enum MacroStage : uint
{
    Connect = 0,      // SMFIM_CONNECT
    Helo = 1,         // SMFIM_HELO
    Mail = 2,         // SMFIM_ENVFROM
    Recipient = 3,    // SMFIM_ENVRCPT
    Data = 4,         // SMFIM_DATA
    EndOfMessage = 5, // SMFIM_EOM
    EndOfHeaders = 6, // SMFIM_EOH
}
