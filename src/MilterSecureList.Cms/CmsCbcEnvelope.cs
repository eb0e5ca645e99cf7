using System.Formats.Asn1;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms;

/// <summary>
/// An AES-256-CBC EnvelopedData (RFC 5652 §6) written into the caller's buffer: the same ContentInfo
/// <see cref="CmsEncryptor.Encrypt"/> makes, but the content is encrypted straight into its place in the DER, so a
/// message-sized body is not held in three arrays on the way (the gateway writes every outbound message this
/// way; docs/design.md, "Gateway performance"). Create it for the recipients (the RecipientInfos carry a fresh
/// content key), ask <see cref="Length"/> for the buffer, <see cref="Write"/> once, dispose (the key is zeroed).
/// </summary>
public sealed class CmsCbcEnvelope : IDisposable
{
    private const int IvLength = 16;
    private readonly byte[] _cek = GC.AllocateArray<byte>(32, pinned: true);
    private readonly byte[] _recipientInfos;
    private readonly int _version;

    public CmsCbcEnvelope(IReadOnlyList<CmsRecipient> recipients)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        if (recipients.Count == 0)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.InvalidArgument, "no recipients given");
        }

        RandomNumberGenerator.Fill(_cek);
        var set = new AsnWriter(AsnEncodingRules.DER);
        using (set.PushSetOf())
        {
            foreach (CmsRecipient recipient in recipients)
            {
                set.WriteEncodedValue(RecipientInfoWriter.Write(recipient, _cek));
            }
        }

        _recipientInfos = set.Encode();
        _version = EnvelopedDataAsn.ComputeEnvelopedDataVersion(null, false, false, recipients.All(r => r.KeyTransport != CmsKeyTransport.EcdhStdSha256Aes256Wrap));
    }

    /// <summary>The length of the ContentInfo for a content of CONTENTLENGTH bytes.</summary>
    public int Length(int contentLength) => Tlv(ContentInfoLength(contentLength));

    /// <summary>Writes the ContentInfo for CONTENT at the start of DESTINATION; returns its length.</summary>
    public int Write(ReadOnlySpan<byte> content, Span<byte> destination)
    {
        int ciphertext = CiphertextLength(content.Length);
        int total = Length(content.Length);
        if (destination.Length < total)
        {
            throw new ArgumentException("the destination is shorter than Length(content.Length)", nameof(destination));
        }

        Span<byte> iv = stackalloc byte[IvLength];
        RandomNumberGenerator.Fill(iv);
        int o = Header(destination, 0x30, ContentInfoLength(content.Length));
        o += Copy(destination[o..], s_envelopedDataOid);
        o += Header(destination[o..], 0xA0, Tlv(EnvelopedDataLength(content.Length)));
        o += Header(destination[o..], 0x30, EnvelopedDataLength(content.Length));
        destination[o++] = 0x02;
        destination[o++] = 0x01;
        destination[o++] = (byte)_version;
        o += Copy(destination[o..], _recipientInfos);
        o += Header(destination[o..], 0x30, EncryptedContentInfoLength(content.Length));
        o += Copy(destination[o..], s_dataOid);
        o += Copy(destination[o..], s_aes256CbcPrefix);
        o += Copy(destination[o..], iv);
        // encryptedContent [0] IMPLICIT OCTET STRING, primitive.
        o += Header(destination[o..], 0x80, ciphertext);
        using Aes aes = SymmetricKeys.CreateAes(_cek);
        if (aes.EncryptCbc(content, iv, destination.Slice(o, ciphertext), PaddingMode.PKCS7) != ciphertext)
        {
            throw new CryptographicException("AES-CBC wrote an unexpected length");
        }

        return o + ciphertext == total ? total : throw new CryptographicException("EnvelopedData length mismatch");
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_cek);

    // OID id-data, OID id-envelopedData, and AlgorithmIdentifier { aes256-CBC, OCTET STRING (16) } up to the IV.
    private static readonly byte[] s_dataOid = Oid(Oids.Data);
    private static readonly byte[] s_envelopedDataOid = Oid(Oids.EnvelopedData);
    private static readonly byte[] s_aes256CbcPrefix = AlgorithmPrefix();

    private static byte[] Oid(string oid)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        w.WriteObjectIdentifier(oid);
        return w.Encode();
    }

    private static byte[] AlgorithmPrefix()
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(Oids.Aes256Cbc);
            w.WriteOctetString(new byte[IvLength]);
        }

        byte[] whole = w.Encode();
        return whole[..^IvLength];
    }

    private static int CiphertextLength(int contentLength) => ((contentLength / 16) + 1) * 16;

    private static int EncryptedContentInfoLength(int contentLength) =>
        s_dataOid.Length + s_aes256CbcPrefix.Length + IvLength + Tlv(CiphertextLength(contentLength));

    private int EnvelopedDataLength(int contentLength) => 3 + _recipientInfos.Length + Tlv(EncryptedContentInfoLength(contentLength));

    private int ContentInfoLength(int contentLength) => s_envelopedDataOid.Length + Tlv(Tlv(EnvelopedDataLength(contentLength)));

    /// <summary>The length of a TLV with LENGTH content octets (one-octet tag, DER definite length).</summary>
    private static int Tlv(int length) => (int)DerHeader.TlvSize(length);

    private static int Header(Span<byte> destination, byte tag, int length) => DerHeader.Write(destination, tag, length);

    private static int Copy(Span<byte> destination, ReadOnlySpan<byte> part)
    {
        part.CopyTo(destination);
        return part.Length;
    }
}
