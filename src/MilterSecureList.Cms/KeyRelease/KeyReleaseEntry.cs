using System.Formats.Asn1;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms.KeyRelease;

/// <summary>What kind of key material a key server holds for a post (docs/key-release.md §1).</summary>
public enum ReleaseMode
{
    /// <summary>The content key itself (rekey lists).</summary>
    Rekey = 0,
    /// <summary>The inner list-key blob of a double-wrap list: the key server never holds a content key.</summary>
    Double = 1,
}

/// <summary>The release policy bound to a post's key material (docs/key-release.md §2).</summary>
/// <remarks>
/// <code>
/// ReleasePolicy ::= SEQUENCE {
///   list      UTF8String,
///   mode      INTEGER { rekey(0), double(1) },
///   sender    UTF8String,
///   notAfter  GeneralizedTime }
/// </code>
/// </remarks>
public sealed record ReleasePolicy(string List, ReleaseMode Mode, string Sender, DateTimeOffset NotAfter)
{
    /// <summary>DER; the binding is computed over exactly these bytes.</summary>
    public byte[] Encode()
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        Write(w);
        return w.Encode();
    }

    internal void Write(AsnWriter w)
    {
        using (w.PushSequence())
        {
            w.WriteCharacterString(UniversalTagNumber.UTF8String, List);
            w.WriteInteger((int)Mode);
            w.WriteCharacterString(UniversalTagNumber.UTF8String, Sender);
            // Whole seconds: DER GeneralizedTime has no trailing zero fraction, and a round trip must give the same bytes.
            w.WriteGeneralizedTime(TruncateToSeconds(NotAfter), omitFractionalSeconds: true);
        }
    }

    /// <summary>Reads a DER ReleasePolicy. Throws <see cref="CmsRewrapException"/> (Malformed) on anything else.</summary>
    public static ReleasePolicy Decode(ReadOnlyMemory<byte> der) =>
        DecoderBoundary.Decode(der, static d =>
        {
            var reader = new AsnReader(d, AsnEncodingRules.DER);
            ReleasePolicy policy = Read(reader);
            reader.ThrowIfNotEmpty();
            return policy;
        }, "malformed release policy");

    internal static ReleasePolicy Read(AsnReader reader)
    {
        AsnReader seq = reader.ReadSequence();
        string list = seq.ReadCharacterString(UniversalTagNumber.UTF8String);
        if (!seq.TryReadInt32(out int mode) || mode is not (0 or 1))
        {
            throw new AsnContentException("release policy mode is not rekey(0) or double(1)");
        }

        string sender = seq.ReadCharacterString(UniversalTagNumber.UTF8String);
        DateTimeOffset notAfter = seq.ReadGeneralizedTime();
        seq.ThrowIfNotEmpty();
        return new ReleasePolicy(list, (ReleaseMode)mode, sender, notAfter);
    }

    public static DateTimeOffset TruncateToSeconds(DateTimeOffset t) =>
        new(t.UtcTicks - (t.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
}

/// <summary>The key-release OtherRecipientInfo of a post (docs/key-release.md §2).</summary>
/// <remarks>
/// <code>
/// KeyReleaseRecipientInfo ::= SEQUENCE {
///   version    INTEGER (0),
///   keyServer  IA5String,
///   messageId  OCTET STRING (SIZE (16)),
///   keyId      OCTET STRING (SIZE (32)),
///   policy     ReleasePolicy,
///   binding    OCTET STRING (SIZE (32)) }
/// </code>
/// </remarks>
public sealed class KeyReleaseEntry
{
    public const int MessageIdLength = 16;
    public const int KeyIdLength = 32;
    public const int BindingLength = 32;

    public KeyReleaseEntry(string keyServer, byte[] messageId, byte[] keyId, ReleasePolicy policy, byte[] binding)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (messageId.Length != MessageIdLength || keyId.Length != KeyIdLength || binding.Length != BindingLength)
        {
            throw new ArgumentException("message id, key id or binding has the wrong length");
        }

        if (keyServer.Length == 0 || keyServer.Any(c => c > 0x7e || c < 0x21))
        {
            throw new ArgumentException("the key server URL must be printable ASCII", nameof(keyServer));
        }

        KeyServer = keyServer;
        MessageId = messageId;
        KeyId = keyId;
        Policy = policy;
        Binding = binding;
    }

    public string KeyServer { get; }

    public byte[] MessageId { get; }

    /// <summary>The message id as the CLI and the logs show it: 32 lower-case hex digits.</summary>
    public string MessageIdHex => Convert.ToHexStringLower(MessageId);

    public byte[] KeyId { get; }

    public ReleasePolicy Policy { get; }

    public byte[] Binding { get; }

    /// <summary>The whole RecipientInfo: <c>[4] IMPLICIT OtherRecipientInfo { id-msl-ori-keyRelease, value }</c>.</summary>
    public byte[] EncodeRecipientInfo()
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence(AsnTags.Constructed4))
        {
            w.WriteObjectIdentifier(Oids.KeyReleaseOri);
            using (w.PushSequence())
            {
                w.WriteInteger(0);
                w.WriteCharacterString(UniversalTagNumber.IA5String, KeyServer);
                w.WriteOctetString(MessageId);
                w.WriteOctetString(KeyId);
                Policy.Write(w);
                w.WriteOctetString(Binding);
            }
        }

        return w.Encode();
    }

    /// <summary>Decodes the oriValue of an <c>id-msl-ori-keyRelease</c> entry.</summary>
    internal static KeyReleaseEntry Decode(ReadOnlyMemory<byte> oriValue) =>
        DecoderBoundary.Decode(oriValue, static v =>
        {
            var outer = new AsnReader(v, AsnEncodingRules.BER);
            AsnReader seq = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            if (!seq.TryReadInt32(out int version) || version != 0)
            {
                throw new AsnContentException("key-release RecipientInfo version is not 0");
            }

            string server = seq.ReadCharacterString(UniversalTagNumber.IA5String);
            byte[] messageId = seq.ReadOctetString();
            byte[] keyId = seq.ReadOctetString();
            ReleasePolicy policy = ReleasePolicy.Read(seq);
            byte[] binding = seq.ReadOctetString();
            seq.ThrowIfNotEmpty();
            try
            {
                return new KeyReleaseEntry(server, messageId, keyId, policy, binding);
            }
            catch (ArgumentException e)
            {
                // Field sizes the constructor refuses are a malformed entry when they come from a message.
                throw new AsnContentException(e.Message, e);
            }
        }, "malformed key-release RecipientInfo");

    /// <summary>A fresh random message id.</summary>
    public static byte[] NewMessageId() => RandomNumberGenerator.GetBytes(MessageIdLength);
}
