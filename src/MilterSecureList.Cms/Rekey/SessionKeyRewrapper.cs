using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms;

/// <summary>Re-key mode: recover the content key from the list's RecipientInfo and write one RecipientInfo per
/// member; everything else is copied as the exact input bytes (docs/cms.md §1).</summary>
public static class SessionKeyRewrapper
{
    /// <summary>A cheap look at a ContentInfo: content type, recipients, double-wrap presence. No private-key work.
    /// The result is the parsed message: re-wrap it with <see cref="Rewrap(CmsEnvelopeInfo, IReadOnlyList{ListKey}, IReadOnlyList{CmsRecipient}, CmsRewrapOptions?)"/>
    /// or <see cref="DoubleWrap.Rewrap(CmsEnvelopeInfo, IReadOnlyList{ListKey}, IReadOnlyList{CmsRecipient}, CmsRewrapOptions?)"/>
    /// rather than parsing it again.</summary>
    /// <exception cref="CmsRewrapException">Malformed input or limits.</exception>
    public static CmsEnvelopeInfo Inspect(ReadOnlyMemory<byte> contentInfo, CmsRewrapOptions? options = null)
    {
        CmsEnvelopeInfo envelope = CmsEnvelopeInfo.Parse(contentInfo, options);
        _ = envelope.Recipients; // every RecipientInfo is looked at now, so a malformed one fails the inspection
        return envelope;
    }

    /// <summary>Re-wrap <paramref name="contentInfo"/> (DER or BER ContentInfo) for <paramref name="members"/>.</summary>
    /// <exception cref="CmsRewrapException">Not enveloped, not for this list, malformed, unsupported, limits.</exception>
    public static RewrapResult Rewrap(ReadOnlyMemory<byte> contentInfo, IReadOnlyList<ListKey> listKeys,
        IReadOnlyList<CmsRecipient> members, CmsRewrapOptions? options = null)
    {
        RequireListKeys(listKeys);
        ArgumentNullException.ThrowIfNull(members);
        return Rewrap(CmsEnvelopeInfo.Parse(contentInfo, options), listKeys, members, options);
    }

    /// <summary>Re-wrap an inspected message for <paramref name="members"/>, without parsing it again.</summary>
    /// <exception cref="CmsRewrapException">Not enveloped, not for this list, malformed, unsupported.</exception>
    public static RewrapResult Rewrap(CmsEnvelopeInfo envelope, IReadOnlyList<ListKey> listKeys,
        IReadOnlyList<CmsRecipient> members, CmsRewrapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        RequireListKeys(listKeys);
        ArgumentNullException.ThrowIfNull(members);
        options ??= CmsRewrapOptions.Default;
        return EnvelopeRewrap.Run(envelope, listKeys, members, options, default(RekeyMode));
    }

    private static void RequireListKeys(IReadOnlyList<ListKey> listKeys)
    {
        ArgumentNullException.ThrowIfNull(listKeys);
        if (listKeys.Count == 0)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.InvalidArgument, "no list key given");
        }
    }

    /// <summary>Re-key: the list's ktri or kari carries the content key itself; each member gets a ktri or kari.</summary>
    private readonly struct RekeyMode : IRewrapMode
    {
        public bool MemberEntriesAreOri => false;

        public RecipientInfoAsn? KeySource(CmsEnvelopeInfo envelope, int index) => envelope.Enveloped.RecipientInfos[index];

        /// <summary>A RecipientInfo that addresses only list keys is replaced by the members'.</summary>
        public bool IsReplaced(CmsEnvelopeInfo envelope, int index, IReadOnlyList<ListKey> keys)
        {
            RecipientInfoAsn ri = envelope.Enveloped.RecipientInfos[index];
            if (ri.KeyTrans is { } ktri)
            {
                return keys.Any(k => k.Matches(ktri.Rid));
            }

            if (ri.KeyAgree is { } kari)
            {
                return kari.RecipientEncryptedKeys.Count > 0
                    && kari.RecipientEncryptedKeys.All(rek => keys.Any(k => k.Matches(rek.Rid)));
            }

            return false;
        }

        public string NotAddressed(IReadOnlyList<ListKey> keys) =>
            "the message is not encrypted to the list certificate (SHA-256 " + string.Join(" or ", keys.Select(k => k.Sha256Fingerprint)) + ")";

        public int MaterialLength(int contentKeyLength) => contentKeyLength;

        // Member RIs are issuerAndSerialNumber ktri (v0) or kari (v3).
        public bool MemberEntriesAreVersion0(IReadOnlyList<CmsRecipient> members) =>
            members.All(m => m.KeyTransport != CmsKeyTransport.EcdhStdSha256Aes256Wrap);

        // Each member's entry is its own ktri or kari.
        public byte[]? OriListKeyId(CmsEnvelopeInfo envelope, int ours) => null;

        // With a shared key agreement, EC members get one RecipientInfo per curve after the others' (in member order
        // within each; the order of a SET OF carries no meaning).
        public bool SharesKeyAgreement(CmsRewrapOptions options) => options.ShareKeyAgreement;
    }
}
