using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Gateway;

/// <summary>Which way a transaction goes through the gateway, decided by the envelope.</summary>
public enum GatewayDirection
{
    /// <summary>The envelope sender is a gateway user: sign and encrypt.</summary>
    Outbound,

    /// <summary>The recipients are gateway users: verify and decrypt.</summary>
    Inbound,

    /// <summary>Neither: the gateway has nothing to do.</summary>
    None,
}

/// <summary>
/// The envelope state of one SMTP transaction as the gateway saw it at MAIL and RCPT. One body serves every
/// recipient, so the recipients accepted so far decide which others must wait for a separate transaction.
/// </summary>
public sealed class GatewayTransaction
{
    internal GatewayTransaction(string sender, GatewayUser? senderUser, X509Certificate2? senderCertificate)
    {
        Sender = sender;
        SenderUser = senderUser;
        SenderCertificate = senderCertificate;
    }

    /// <summary>The envelope sender without angle brackets (empty for the null sender).</summary>
    public string Sender { get; }

    public GatewayUser? SenderUser { get; }

    internal X509Certificate2? SenderCertificate { get; }

    /// <summary>Recipients accepted so far, without angle brackets.</summary>
    public List<string> Recipients { get; } = [];

    /// <summary>Outbound: certificate and capabilities of each recipient the body will be encrypted to.</summary>
    internal Dictionary<string, (ParsedCertificate Certificate, SmimeCapabilities? Capabilities)> EncryptTo { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Outbound: a recipient whose policy is <c>required</c> was accepted (so no plain recipient may join).</summary>
    internal bool HasRequired { get; set; }

    /// <summary>Outbound: a recipient that gets no encryption (never, opportunistic without certificate, local user).</summary>
    internal bool HasPlain { get; set; }

    /// <summary>Outbound: some recipient's policy asks for a signature.</summary>
    internal bool WantsSignature { get; set; }

    /// <summary>Inbound: whether the first accepted recipient was a gateway user (null until one is accepted).</summary>
    internal bool? ToGatewayUsers { get; set; }

    public GatewayDirection Direction => SenderUser is not null
        ? GatewayDirection.Outbound
        : ToGatewayUsers == true ? GatewayDirection.Inbound : GatewayDirection.None;

    /// <summary>Outbound: the body will be encrypted (every recipient has a usable certificate, none is plain).</summary>
    public bool WillEncrypt => SenderUser is not null && EncryptTo.Count > 0 && !HasPlain;
}
