using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms;

/// <summary>Double-wrap mode (docs/double-wrap.md): the content key is wrapped under the list key
/// (RFC 5649, inner layer) and that blob under the server's or a member's certificate (outer layer), carried in an
/// OtherRecipientInfo. The server swaps outer layers and never holds the content key.</summary>
public static class DoubleWrap
{
    /// <summary>Length of a list key (AES-256 KEK).</summary>
    public const int ListKeyLength = 32;

    /// <summary>Sender side: encrypt a MIME entity for the list server.</summary>
    /// <param name="mimeEntity">The canonical (CRLF) MIME entity to protect.</param>
    /// <param name="listId">The list address (goes into the ListKeyIdentifier).</param>
    /// <param name="epoch">The list key's epoch.</param>
    /// <param name="listKey">The 32-byte list key of that epoch.</param>
    /// <param name="serverCertificate">The list server's certificate (RSA → OAEP-SHA256, EC → kari).</param>
    /// <param name="useGcm">AES-256-GCM AuthEnvelopedData (default; detects tampering) or AES-256-CBC EnvelopedData.</param>
    /// <returns>The DER ContentInfo.</returns>
    public static byte[] Encrypt(ReadOnlySpan<byte> mimeEntity, string listId, long epoch, ReadOnlySpan<byte> listKey,
        X509Certificate2 serverCertificate, bool useGcm = true)
    {
        byte[] cek = GC.AllocateArray<byte>(32, pinned: true);
        RandomNumberGenerator.Fill(cek);
        try
        {
            return Encrypt(mimeEntity, listId, epoch, listKey, serverCertificate, useGcm, cek);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cek);
        }
    }

    internal static byte[] Encrypt(ReadOnlySpan<byte> mimeEntity, string listId, long epoch, ReadOnlySpan<byte> listKey,
        X509Certificate2 serverCertificate, bool useGcm, byte[] cek)
    {
        ArgumentException.ThrowIfNullOrEmpty(listId);
        ArgumentNullException.ThrowIfNull(serverCertificate);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (listKey.Length != ListKeyLength)
        {
            throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument, $"a list key is {ListKeyLength} bytes");
        }

        byte[] blob = WrapInner(listKey, cek);
        CmsRecipient server = CmsRecipient.FromCertificate(serverCertificate, preferOaep: true);
        byte[] ori = DoubleWrapRecipientInfoAsn.EncodeOri(DoubleWrapRecipientInfoAsn.EncodeListKeyId(listId, epoch),
            RecipientInfoWriter.Write(server, blob));
        CryptographicOperations.ZeroMemory(blob);
        (byte[] eci, byte[]? mac) = ContentCipher.Encrypt(mimeEntity, cek, useGcm);

        var w = new AsnWriter(AsnEncodingRules.DER, eci.Length + ori.Length + 128);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(useGcm ? Oids.AuthEnvelopedData : Oids.EnvelopedData);
            using (w.PushSequence(AsnTags.Constructed0))
            using (w.PushSequence())
            {
                // RFC 5652 §6.1: an ori makes EnvelopedData version 3; AuthEnvelopedData is always 0 (RFC 5083).
                w.WriteInteger(useGcm ? 0 : 3);
                using (w.PushSetOf())
                {
                    w.WriteEncodedValue(ori);
                }

                w.WriteEncodedValue(eci);
                if (mac is not null)
                {
                    w.WriteOctetString(mac);
                }
            }
        }

        return w.Encode();
    }

    /// <summary>Server side: remove only the outer layer addressed to one of <paramref name="serverKeys"/> and wrap the
    /// inner blob for each member. The inner layer is copied, never opened; the server never has the content key.</summary>
    /// <exception cref="CmsRewrapException">NotForThisList when no double-wrap RecipientInfo names a server key.</exception>
    public static RewrapResult Rewrap(ReadOnlyMemory<byte> contentInfo, IReadOnlyList<ListKey> serverKeys,
        IReadOnlyList<CmsRecipient> members, CmsRewrapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(serverKeys);
        ArgumentNullException.ThrowIfNull(members);
        return Rewrap(CmsEnvelopeInfo.Parse(contentInfo, options), serverKeys, members, options);
    }

    /// <summary>Server side, on an inspected message (<see cref="SessionKeyRewrapper.Inspect"/>): no second parse.</summary>
    /// <exception cref="CmsRewrapException">NotForThisList when no double-wrap RecipientInfo names a server key.</exception>
    public static RewrapResult Rewrap(CmsEnvelopeInfo envelope, IReadOnlyList<ListKey> serverKeys,
        IReadOnlyList<CmsRecipient> members, CmsRewrapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(serverKeys);
        ArgumentNullException.ThrowIfNull(members);
        options ??= CmsRewrapOptions.Default;
        return EnvelopeRewrap.Run(envelope, serverKeys, members, options, default(ServerMode));
    }

    /// <summary>Member side: open a double-wrapped message (or, when it has no double-wrap RecipientInfo for this
    /// certificate, an ordinary S/MIME one).</summary>
    /// <param name="listKeyLookup">Returns the list key for (list address, epoch), or null when the member does not have it.</param>
    /// <exception cref="CmsRewrapException">NotForThisList (no copy for this certificate); DecryptionFailed (missing or
    /// wrong list key, altered content); Malformed / UnsupportedAlgorithm.</exception>
    public static byte[] Decrypt(ReadOnlyMemory<byte> contentInfo, X509Certificate2 certificate, AsymmetricAlgorithm privateKey,
        Func<(string ListId, long Epoch), byte[]?> listKeyLookup)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(privateKey);
        ArgumentNullException.ThrowIfNull(listKeyLookup);
        CmsEnvelopeInfo envelope = CmsEnvelopeInfo.Parse(contentInfo);
        EnvelopedDataAsn ed = envelope.Enveloped;
        using var me = new ListKey(certificate, privateKey, ownsKey: false);
        for (int i = 0; i < ed.RecipientInfos.Count; i++)
        {
            if (!envelope.IsDoubleWrapAt(i))
            {
                continue;
            }

            DoubleWrapRecipientInfoAsn dw = envelope.DoubleWrapAt(i);
            if (!me.IsAddressedBy(dw.Outer))
            {
                continue;
            }

            int cekLength = ContentCiphers.KeyLengthOrThrow(ed);

            byte[] blob = ContentKeyRecovery.Recover(dw.Outer, me, Aes.GetKeyWrapPaddedLength(cekLength));
            byte[]? listKey = listKeyLookup((dw.ListId, dw.Epoch));
            if (listKey is null)
            {
                CryptographicOperations.ZeroMemory(blob);
                throw new CmsRewrapException(CmsRewrapFailure.DecryptionFailed,
                    $"no list key for {dw.ListId} epoch {dw.Epoch}");
            }

            byte[] cek;
            try
            {
                cek = UnwrapInner(listKey, blob);
            }
            catch (CryptographicException e)
            {
                throw new CmsRewrapException(CmsRewrapFailure.DecryptionFailed,
                    $"the list key for {dw.ListId} epoch {dw.Epoch} does not open this message (wrong key or altered message)", e);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(blob);
            }

            try
            {
                if (cek.Length != cekLength)
                {
                    throw new CmsRewrapException(CmsRewrapFailure.DecryptionFailed, "the unwrapped content key has the wrong length");
                }

                return ContentCipher.Decrypt(ed, cek);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(cek);
            }
        }

        return CmsDecryptor.DecryptOrdinary(ed, me);
    }

    /// <summary>RFC 5649 (id-aes256-wrap-pad) wrap of the content key under the list key.</summary>
    internal static byte[] WrapInner(ReadOnlySpan<byte> listKey, ReadOnlySpan<byte> cek)
    {
        using Aes aes = SymmetricKeys.CreateAes(listKey);
        return aes.EncryptKeyWrapPadded(cek);
    }

    internal static byte[] UnwrapInner(ReadOnlySpan<byte> listKey, ReadOnlySpan<byte> blob)
    {
        if (listKey.Length != ListKeyLength)
        {
            throw new CryptographicException("a list key is 32 bytes");
        }

        using Aes aes = SymmetricKeys.CreateAes(listKey);
        return aes.DecryptKeyWrapPadded(blob);
    }

    /// <summary>Double-wrap: our entry is an OtherRecipientInfo whose outer layer names a server key; what it carries is
    /// the inner blob (an RFC 5649 wrap of the content key under the list key), re-wrapped per member in the same
    /// kind of OtherRecipientInfo with the same ListKeyIdentifier.</summary>
    private readonly struct ServerMode : IRewrapMode
    {
        public bool MemberEntriesAreOri => true;

        public RecipientInfoAsn? KeySource(CmsEnvelopeInfo e, int index) =>
            e.IsDoubleWrapAt(index) ? e.DoubleWrapAt(index).Outer : null;

        /// <summary>Every copy for the server is replaced by the members'.</summary>
        public bool IsReplaced(CmsEnvelopeInfo e, int index, IReadOnlyList<ListKey> keys)
        {
            if (!e.IsDoubleWrapAt(index))
            {
                return false;
            }

            RecipientInfoAsn outer = e.DoubleWrapAt(index).Outer;
            return keys.Any(k => k.IsAddressedBy(outer));
        }

        public string NotAddressed(IReadOnlyList<ListKey> keys) =>
            "the message has no double-wrap RecipientInfo for the list server (SHA-256 "
            + string.Join(" or ", keys.Select(k => k.Sha256Fingerprint)) + ")";

        // The blob's length follows from the content cipher's key length.
        public int MaterialLength(int contentKeyLength) => Aes.GetKeyWrapPaddedLength(contentKeyLength);

        public bool MemberEntriesAreVersion0(IReadOnlyList<CmsRecipient> members) => false;

        // Every member's entry is an OtherRecipientInfo with the sender's ListKeyIdentifier around the member's ktri or kari.
        public byte[]? OriListKeyId(CmsEnvelopeInfo e, int ours) => e.DoubleWrapAt(ours).ListKeyIdEncoded.ToArray();

        public bool SharesKeyAgreement(CmsRewrapOptions options) => false;
    }
}
