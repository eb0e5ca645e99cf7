using MilterSecureList.Protocol.Responses;
using MilterSecureList.Protocol.Wire;

namespace MilterSecureList.Protocol.Session;

/// <summary>A recipient as RCPT carried it (angle brackets included) with its ESMTP parameters.</summary>
public sealed record MilterRecipient(string Address, IReadOnlyList<string> EsmtpArgs);

/// <summary>
/// A header as received: value after the colon, folded with LF only (docs/protocol.md §3). Held as raw
/// bytes only; <see cref="Value"/> decodes them as UTF-8 on each call.
/// </summary>
public sealed record MilterHeader(string Name, byte[] RawValue)
{
    public string Value => System.Text.Encoding.UTF8.GetString(RawValue);
}

/// <summary>
/// The end-of-message view of one message (the per-message "transaction"): envelope, headers, macros, body,
/// and the modifications that are legal only here. Modifications are queued and sent in a legal order with
/// the verdict: header/envelope edits, then REPLBODY chunks, then the one final reply. They are sent only
/// with a continue or accept verdict. Every modification method throws <see cref="InvalidOperationException"/>
/// once the end-of-message call has returned, or when the MTA did not grant the action.
/// </summary>
public sealed class MilterMessageContext
{
    private readonly List<MilterModification> _modifications = [];
    private readonly Func<CancellationToken, ValueTask> _sendProgress;
    private bool _open = true;

    internal MilterMessageContext(
        string connectionId,
        string sender,
        IReadOnlyList<string> senderArgs,
        IReadOnlyList<MilterRecipient> recipients,
        IReadOnlyList<MilterHeader> headers,
        IMacroLookup macros,
        MessageBodySpool body,
        MilterActions grantedActions,
        Func<CancellationToken, ValueTask> sendProgress)
    {
        ConnectionId = connectionId;
        Sender = sender;
        SenderArgs = senderArgs;
        Recipients = recipients;
        Headers = headers;
        Macros = macros;
        Body = body;
        GrantedActions = grantedActions;
        _sendProgress = sendProgress;
    }

    public string ConnectionId { get; }

    /// <summary>Postfix queue id (macro <c>i</c>); null if the MTA did not send it.</summary>
    public string? QueueId => Macros.QueueId;

    /// <summary>MAIL FROM as the client wrote it, e.g. "&lt;a@b&gt;" or "&lt;&gt;".</summary>
    public string Sender { get; }

    public IReadOnlyList<string> SenderArgs { get; }

    /// <summary>Accepted recipients in the order received.</summary>
    public IReadOnlyList<MilterRecipient> Recipients { get; }

    public IReadOnlyList<MilterHeader> Headers { get; }

    public IMacroLookup Macros { get; }

    /// <summary>The body as received (CRLF line ends, dot-unstuffed).</summary>
    public MessageBodySpool Body { get; }

    /// <summary>The actions the MTA granted in negotiation.</summary>
    public MilterActions GrantedActions { get; }

    internal IReadOnlyList<MilterModification> Modifications => _modifications;

    internal Stream? ReplacementBody { get; private set; }

    internal ReadOnlyMemory<byte>? ReplacementBodyBytes { get; private set; }

    public void AddRecipient(string address, string? esmtpArgs = null) => Add(new AddRecipientModification(Checked(address, nameof(address)), esmtpArgs is null ? null : Checked(esmtpArgs, nameof(esmtpArgs))));

    public void DeleteRecipient(string address) => Add(new DeleteRecipientModification(Checked(address, nameof(address))));

    /// <summary>Appends a header. Fold with LF + whitespace, never CR.</summary>
    public void AddHeader(string name, string value) => Add(new AddHeaderModification(CheckedName(name), CheckedValue(value)));

    /// <summary>Inserts a header at <paramref name="index"/> (0-based over all fields; Postfix's own Received is #1).</summary>
    public void InsertHeader(uint index, string name, string value) => Add(new InsertHeaderModification(index, CheckedName(name), CheckedValue(value)));

    /// <summary>Changes occurrence <paramref name="index"/> (1-based, per name) of a header; an empty value deletes it.</summary>
    public void ChangeHeader(uint index, string name, string value) => Add(new ChangeHeaderModification(index, CheckedName(name), CheckedValue(value)));

    public void ChangeFrom(string address, string? esmtpArgs = null) => Add(new ChangeFromModification(Checked(address, nameof(address)), esmtpArgs is null ? null : Checked(esmtpArgs, nameof(esmtpArgs))));

    /// <summary>Puts the message on hold (Postfix ignores the reason). Not a verdict: one still follows.</summary>
    public void Quarantine(string reason) => Add(new QuarantineModification(Checked(reason, nameof(reason))));

    /// <summary>Replaces the body with the stream's content, read when the verdict is sent; the stream is then disposed.</summary>
    public void ReplaceBody(Stream body)
    {
        ArgumentNullException.ThrowIfNull(body);
        CheckAllowed(MilterActions.ChangeBody);
        if (ReplacementBody is not null || ReplacementBodyBytes is not null)
        {
            throw new InvalidOperationException("the body was already replaced for this message");
        }

        ReplacementBody = body;
    }

    /// <summary>Replaces the body with these bytes (kept by reference until the verdict is sent).</summary>
    public void ReplaceBody(ReadOnlyMemory<byte> body)
    {
        CheckAllowed(MilterActions.ChangeBody);
        if (ReplacementBody is not null || ReplacementBodyBytes is not null)
        {
            throw new InvalidOperationException("the body was already replaced for this message");
        }

        ReplacementBodyBytes = body;
    }

    /// <summary>Sends SMFIR_PROGRESS now, so the MTA's per-read timeout restarts during long work.</summary>
    public ValueTask SendProgressAsync(CancellationToken cancellationToken = default)
    {
        if (!_open)
        {
            throw new InvalidOperationException("progress is legal only during end-of-message");
        }

        return _sendProgress(cancellationToken);
    }

    internal void Close() => _open = false;

    private void Add(MilterModification modification)
    {
        CheckAllowed(modification.RequiredAction);
        _modifications.Add(modification);
    }

    private void CheckAllowed(MilterActions action)
    {
        if (!_open)
        {
            throw new InvalidOperationException("modifications are legal only during end-of-message");
        }

        if ((GrantedActions & action) != action)
        {
            throw new InvalidOperationException($"the MTA did not grant the action {action} in negotiation");
        }
    }

    private static string Checked(string value, string name)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        MilterModification.CheckNoNul(value, name);
        return value;
    }

    private static string CheckedName(string name)
    {
        Checked(name, nameof(name));
        if (name.Length == 0 || name.AsSpan().IndexOfAny(":\r\n \t") >= 0)
        {
            throw new ArgumentException($"'{name}' is not a valid header name", nameof(name));
        }

        return name;
    }

    private static string CheckedValue(string value)
    {
        Checked(value, nameof(value));
        if (value.Contains('\r', StringComparison.Ordinal))
        {
            // docs/protocol.md §4.3: the MTA adds CR itself; fold with LF + whitespace.
            throw new ArgumentException("header values must not contain CR; fold with LF followed by whitespace", nameof(value));
        }

        return value;
    }
}
