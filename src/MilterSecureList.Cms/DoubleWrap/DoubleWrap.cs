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
        options ??= CmsRewrapOptions.Default;
        (ContentInfoAsn ci, EnvelopedDataAsn ed) = SessionKeyRewrapper.Parse(contentInfo, options);

        DoubleWrapRecipientInfoAsn? mine = null;
        ListKey? matched = null;
        var kept = new List<RecipientInfoAsn>();
        foreach (RecipientInfoAsn ri in ed.RecipientInfos)
        {
            if (ri.Kind == RecipientInfoKind.Other && ri.OriType == Oids.DoubleWrapOri)
            {
                DoubleWrapRecipientInfoAsn dw = DecodeDoubleWrap(ri);
                ListKey? k = serverKeys.FirstOrDefault(key => CmsDecryptor.Names(dw.Outer, key));
                if (k is not null)
                {
                    if (mine is null)
                    {
                        mine = dw;
                        matched = k;
                    }

                    continue; // every copy for the server is replaced by the members'
                }
            }

            if (options.KeepOtherRecipientInfos)
            {
                kept.Add(ri);
            }
        }

        if (mine is not { } dwMine || matched is null)
        {
            throw new CmsRewrapException(CmsRewrapFailure.NotForThisList,
                "the message has no double-wrap RecipientInfo for the list server (SHA-256 "
                + string.Join(" or ", serverKeys.Select(k => k.Sha256Fingerprint)) + ")");
        }

        string cipher = ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm;
        int cekLength = ContentCiphers.KeyLengthOrThrow(ed);

        // The blob is an RFC 5649 wrap of the CEK: its length follows from the content cipher. As in re-key mode a
        // failed outer unwrap silently continues with random bytes (no padding oracle on the server).
        byte[] blob = CmsDecryptor.RecoverOrThrow(dwMine.Outer, matched, Aes.GetKeyWrapPaddedLength(cekLength));
        var encoded = new byte[members.Count][];
        try
        {
            byte[] listKeyId = dwMine.ListKeyIdEncoded.ToArray();
            if (members.Count >= options.ParallelThreshold)
            {
                Parallel.For(0, members.Count, new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism },
                    i => encoded[i] = DoubleWrapRecipientInfoAsn.EncodeOri(listKeyId, RecipientInfoWriter.Write(members[i], blob)));
            }
            else
            {
                for (int i = 0; i < members.Count; i++)
                {
                    encoded[i] = DoubleWrapRecipientInfoAsn.EncodeOri(listKeyId, RecipientInfoWriter.Write(members[i], blob));
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(blob);
        }

        if (members.Count + kept.Count == 0)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.InvalidArgument, "the list has no members to wrap for");
        }

        // Every member entry is an ori, so EnvelopedData is version 3 (RFC 5652 §6.1 rule 2) unless rule 1 applies.
        int version = SessionKeyRewrapper.OutputVersion(ed,
            anyPwriOrOri: members.Count > 0 || kept.Any(r => r.Kind is RecipientInfoKind.Password or RecipientInfoKind.Other),
            allRecipientInfosVersion0: false);

        byte[] output = EnvelopeAssembler.Assemble(ci.ContentType, version, ed, kept.Select(k => k.Encoded).ToList(), encoded,
            options.SortRecipientInfos);
        return new RewrapResult(output, members.Count, ed.IsAuthEnveloped, kept.Count, matched, version, cipher);
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
        (_, EnvelopedDataAsn ed) = SessionKeyRewrapper.Parse(contentInfo, CmsRewrapOptions.Default);
        using var me = new ListKey(certificate, privateKey, ownsKey: false);
        foreach (RecipientInfoAsn ri in ed.RecipientInfos)
        {
            if (ri.Kind != RecipientInfoKind.Other || ri.OriType != Oids.DoubleWrapOri)
            {
                continue;
            }

            DoubleWrapRecipientInfoAsn dw = DecodeDoubleWrap(ri);
            if (!CmsDecryptor.Names(dw.Outer, me))
            {
                continue;
            }

            int cekLength = ContentCiphers.KeyLengthOrThrow(ed);

            byte[] blob = CmsDecryptor.RecoverOrThrow(dw.Outer, me, Aes.GetKeyWrapPaddedLength(cekLength));
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

    private static DoubleWrapRecipientInfoAsn DecodeDoubleWrap(in RecipientInfoAsn ri)
    {
        try
        {
            return DoubleWrapRecipientInfoAsn.Decode(ri.OriValue);
        }
        catch (AsnContentException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "malformed double-wrap RecipientInfo: " + e.Message, e);
        }
        catch (UnsupportedCmsException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, e.Message, e);
        }
    }
}
