using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms.KeyRelease;

/// <summary>What the milter deposits with the key server for one post (docs/key-release.md §4.1).</summary>
public sealed class KeyReleaseSeal
{
    internal KeyReleaseSeal(byte[] contentInfo, KeyReleaseEntry entry, byte[] keyRecipientInfo, int keyLength, byte[]? listKeyId)
    {
        ContentInfo = contentInfo;
        Entry = entry;
        KeyRecipientInfo = keyRecipientInfo;
        KeyLength = keyLength;
        ListKeyId = listKeyId;
    }

    /// <summary>The post with the release entry in place of the list's RecipientInfo(s).</summary>
    public byte[] ContentInfo { get; }

    public KeyReleaseEntry Entry { get; }

    /// <summary>The key material (content key, or double-wrap inner blob) wrapped to the key server's release certificate.</summary>
    public byte[] KeyRecipientInfo { get; }

    /// <summary>Length of the key material in bytes.</summary>
    public int KeyLength { get; }

    /// <summary>Double-wrap lists: the DER ListKeyIdentifier the member's reply must carry; null for rekey.</summary>
    public byte[]? ListKeyId { get; }
}

/// <summary>Milter side of key release: recover the key material once, wrap it for the key server, and replace the
/// list's RecipientInfo(s) with one key-release entry. Everything else is copied as the exact input bytes.</summary>
public static class KeyReleaseSealer
{
    /// <param name="contentInfo">The post (DER or BER ContentInfo).</param>
    /// <param name="listKeys">The list's keys (rekey) or the server's keys (double-wrap).</param>
    /// <param name="keyServer">The key server's release certificate, imported.</param>
    /// <param name="keyServerUrl">Where members ask for the key.</param>
    /// <param name="policy">The release policy (its mode decides what the key material is).</param>
    /// <param name="messageId">16 random bytes (<see cref="KeyReleaseEntry.NewMessageId"/>).</param>
    /// <exception cref="CmsRewrapException">Not enveloped, not for this list, malformed, unsupported.</exception>
    public static KeyReleaseSeal Seal(ReadOnlyMemory<byte> contentInfo, IReadOnlyList<ListKey> listKeys, CmsRecipient keyServer,
        string keyServerUrl, ReleasePolicy policy, byte[] messageId, CmsRewrapOptions? options = null) =>
        Seal(CmsEnvelopeInfo.Parse(contentInfo, options), listKeys, keyServer, keyServerUrl, policy, messageId, options);

    /// <summary>Seals a post the filter has already inspected, so its CMS is parsed once per message
    /// (docs/design.md, "One parse per message"); the raw bytes are not read again.</summary>
    /// <param name="envelope">The inspection of the post (<see cref="SessionKeyRewrapper.Inspect"/>).</param>
    /// <exception cref="CmsRewrapException">Not for this list, malformed, unsupported.</exception>
    public static KeyReleaseSeal Seal(CmsEnvelopeInfo envelope, IReadOnlyList<ListKey> listKeys, CmsRecipient keyServer,
        string keyServerUrl, ReleasePolicy policy, byte[] messageId, CmsRewrapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(listKeys);
        ArgumentNullException.ThrowIfNull(keyServer);
        ArgumentNullException.ThrowIfNull(policy);
        options ??= CmsRewrapOptions.Default;
        EnvelopedDataAsn ed = envelope.Enveloped;
        int cekLength = ContentCiphers.KeyLengthOrThrow(ed);

        var kept = new List<RecipientInfoAsn>();
        byte[]? material = null;
        byte[]? listKeyId = null;
        try
        {
            foreach (RecipientInfoAsn ri in ed.RecipientInfos)
            {
                if (policy.Mode == ReleaseMode.Double && ri.Kind == RecipientInfoKind.Other && ri.OriType == Oids.DoubleWrapOri)
                {
                    DoubleWrapRecipientInfoAsn dw = DecodeDoubleWrap(ri);
                    ListKey? server = listKeys.FirstOrDefault(k => k.IsAddressedBy(dw.Outer));
                    if (server is not null)
                    {
                        // The inner blob: an RFC 5649 wrap of the CEK, whose length follows from the content cipher.
                        material ??= ContentKeyRecovery.Recover(dw.Outer, server, Aes.GetKeyWrapPaddedLength(cekLength));
                        listKeyId ??= dw.ListKeyIdEncoded.ToArray();
                        continue;
                    }
                }
                else if (policy.Mode == ReleaseMode.Rekey && listKeys.FirstOrDefault(k => k.IsAddressedBy(ri)) is { } key)
                {
                    // No padding oracle: a forged key transport yields a synthetic key, deposited like any other.
                    material ??= ContentKeyRecovery.Recover(ri, key, cekLength);
                    continue;
                }

                if (options.KeepOtherRecipientInfos)
                {
                    kept.Add(ri);
                }
            }

            if (material is null)
            {
                throw new CmsRewrapException(CmsRewrapFailure.NotForThisList,
                    "the message is not encrypted to the list certificate (SHA-256 " + string.Join(" or ", listKeys.Select(k => k.Sha256Fingerprint)) + ")");
            }

            byte[] keyRecipientInfo = RecipientInfoWriter.Write(keyServer, material);
            byte[] policyDer = policy.Encode();
            byte[] binding = ReleaseBinding.Compute(material, policyDer, messageId);
            var entry = new KeyReleaseEntry(keyServerUrl, messageId, KeyId(keyServer.CertificateDer.Span), policy, binding);

            // RFC 5652 §6.1 rule 2: an ori makes EnvelopedData version 3 (AuthEnvelopedData stays 0).
            int version = EnvelopeRewrap.OutputVersion(ed, anyPwriOrOri: true, allRecipientInfosVersion0: false);
            byte[] output = EnvelopeAssembler.Assemble(envelope.ContentType, version, ed, kept.Select(k => k.Encoded).ToList(),
                [entry.EncodeRecipientInfo()], options.SortRecipientInfos);
            return new KeyReleaseSeal(output, entry, keyRecipientInfo, material.Length, listKeyId);
        }
        finally
        {
            if (material is not null)
            {
                CryptographicOperations.ZeroMemory(material);
            }
        }
    }

    /// <summary>The key id of a release certificate: SHA-256 of its DER (docs/key-release.md §2).</summary>
    public static byte[] KeyId(ReadOnlySpan<byte> certificateDer) => SHA256.HashData(certificateDer);

    internal static DoubleWrapRecipientInfoAsn DecodeDoubleWrap(in RecipientInfoAsn ri) =>
        DecoderBoundary.Decode(ri.OriValue, DoubleWrapRecipientInfoAsn.Decode, "malformed double-wrap RecipientInfo");
}
