using System.Formats.Asn1;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms.KeyRelease;

/// <summary>Key-server side: open a deposit with the release key and wrap the key material for one member
/// (docs/key-release.md §4.2). One private operation per release and one public operation per member.</summary>
public static class KeyReleaseServerKey
{
    /// <summary>Recover the deposited key material. The unwrap has no padding oracle: a forged deposit yields
    /// a synthetic key that then fails the binding check like any other refusal. Returns a pinned array the caller
    /// zeroes.</summary>
    /// <exception cref="CmsRewrapException">Malformed, or NotForThisList when it is not wrapped to <paramref name="releaseKey"/>.</exception>
    public static byte[] UnwrapDeposit(ReadOnlyMemory<byte> keyRecipientInfo, ListKey releaseKey, int keyLength)
    {
        ArgumentNullException.ThrowIfNull(releaseKey);
        if (keyLength is < 5 or > 64)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "the deposited key length is out of range");
        }

        RecipientInfoAsn ri = DecodeRecipientInfo(keyRecipientInfo);
        if (ri.Kind is not (RecipientInfoKind.KeyTransport or RecipientInfoKind.KeyAgreement) || !releaseKey.IsAddressedBy(ri))
        {
            throw new CmsRewrapException(CmsRewrapFailure.NotForThisList, "the deposit is not wrapped to this key server's release certificate");
        }

        return ContentKeyRecovery.Recover(ri, releaseKey, keyLength);
    }

    /// <summary>The member's RecipientInfo: ktri or kari around the content key (rekey), or, with a
    /// <paramref name="listKeyId"/>, the double-wrap ori around the inner blob.</summary>
    public static byte[] WrapForMember(CmsRecipient member, ReadOnlySpan<byte> keyMaterial, ReadOnlySpan<byte> listKeyId = default)
    {
        ArgumentNullException.ThrowIfNull(member);
        byte[] ri = RecipientInfoWriter.Write(member, keyMaterial);
        return listKeyId.IsEmpty ? ri : DoubleWrapRecipientInfoAsn.EncodeOri(listKeyId, ri);
    }

    internal static RecipientInfoAsn DecodeRecipientInfo(ReadOnlyMemory<byte> encoded) =>
        DecoderBoundary.Decode(encoded, static e =>
        {
            var reader = new AsnReader(e, AsnEncodingRules.BER);
            RecipientInfoAsn ri = RecipientInfoAsn.Decode(reader);
            reader.ThrowIfNotEmpty();
            return ri;
        }, "malformed RecipientInfo");
}
