using Microsoft.Extensions.Logging;

namespace MilterSecureList.Gateway;

/// <summary>
/// The gateway's log catalog. Audit lines (one per signature made, signature verified and message decrypted)
/// carry the user, the Message-ID and the queue id, never content or key material.
/// </summary>
public static partial class GatewayLog
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "{QueueId}: gateway audit: signed for {User} message-id={MessageId} form={Form}")]
    public static partial void Signed(ILogger logger, string queueId, string user, string messageId, string form);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "{QueueId}: gateway audit: encrypted for {User} message-id={MessageId} recipients={Recipients} cipher={Cipher} key-transport={KeyTransport}")]
    public static partial void Encrypted(ILogger logger, string queueId, string user, string messageId, int recipients, string cipher, string keyTransport);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "{QueueId}: gateway audit: decrypted for {User} message-id={MessageId}")]
    public static partial void Decrypted(ILogger logger, string queueId, string user, string messageId);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Information, Message = "{QueueId}: gateway audit: signature by {Signer} verified message-id={MessageId}")]
    public static partial void Verified(ILogger logger, string queueId, string signer, string messageId);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "{QueueId}: gateway: signature refused message-id={MessageId}: {Problem}")]
    public static partial void SignatureRefused(ILogger logger, string queueId, string messageId, string problem);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Warning, Message = "gateway: certificate change for {Address}: harvested certificate {Fingerprint} replaces a pinned one and waits for an operator (securelist cert accept {Address})")]
    public static partial void PinConflict(ILogger logger, string address, string fingerprint);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Information, Message = "gateway: harvested certificate {Fingerprint} for {Address}")]
    public static partial void Harvested(ILogger logger, string address, string fingerprint);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Information, Message = "{QueueId}: gateway: {Verdict}: {Reason}")]
    public static partial void Verdict(ILogger logger, string queueId, string verdict, string reason);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Warning, Message = "{QueueId}: gateway: left encrypted message-id={MessageId}: {Reason}")]
    public static partial void LeftEncrypted(ILogger logger, string queueId, string messageId, string reason);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Information, Message = "gateway: notice sent to {User} about the pending certificate {Fingerprint} of {Correspondent}")]
    public static partial void NoticeSent(ILogger logger, string user, string correspondent, string fingerprint);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Warning, Message = "gateway: notice to {User} about {Correspondent} could not be sent: {Error}")]
    public static partial void NoticeFailed(ILogger logger, string user, string correspondent, string error);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Information, Message = "{QueueId}: gateway audit: key fetched for {User} release={Release} message-id={MessageId}")]
    public static partial void ReleaseFetched(ILogger logger, string queueId, string user, string messageId, string release);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Warning, Message = "{QueueId}: gateway: key server refused the key for {User} release={Release} message-id={MessageId}; delivered encrypted")]
    public static partial void ReleaseRefused(ILogger logger, string queueId, string user, string messageId, string release);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Warning, Message = "{QueueId}: gateway: key server unavailable for release={Release} message-id={MessageId}, tempfailed: {Problem}")]
    public static partial void ReleaseUnavailable(ILogger logger, string queueId, string messageId, string release, string problem);
}
