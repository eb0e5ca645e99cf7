using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms.KeyRelease;

/// <summary>Member side: find a post's release entry and, once the key server answered, put the member's
/// RecipientInfo in its place so that any S/MIME client opens the message (docs/key-release.md §5).</summary>
public static class KeyReleaseReader
{
    /// <summary>The post's key-release entry, or null when it has none.</summary>
    /// <exception cref="CmsRewrapException">Not enveloped, or malformed.</exception>
    public static KeyReleaseEntry? Find(ReadOnlyMemory<byte> contentInfo)
    {
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(contentInfo, CmsRewrapOptions.Default).Enveloped;
        foreach (RecipientInfoAsn ri in ed.RecipientInfos)
        {
            if (ri.Kind == RecipientInfoKind.Other && ri.OriType == Oids.KeyReleaseOri)
            {
                return KeyReleaseEntry.Decode(ri.OriValue);
            }
        }

        return null;
    }

    /// <summary>The post with every key-release entry replaced by <paramref name="recipientInfo"/> (a ktri, a kari or a
    /// double-wrap ori); the encrypted content and the other RecipientInfos are copied byte for byte and the
    /// EnvelopedData version is recomputed (RFC 5652 §6.1).</summary>
    public static byte[] Insert(ReadOnlyMemory<byte> contentInfo, ReadOnlyMemory<byte> recipientInfo)
    {
        CmsEnvelopeInfo envelope = CmsEnvelopeInfo.Parse(contentInfo, CmsRewrapOptions.Default);
        EnvelopedDataAsn ed = envelope.Enveloped;
        RecipientInfoAsn mine = KeyReleaseServerKey.DecodeRecipientInfo(recipientInfo);
        bool doubleWrap = mine.Kind == RecipientInfoKind.Other && mine.OriType == Oids.DoubleWrapOri;
        if (mine.Kind is not (RecipientInfoKind.KeyTransport or RecipientInfoKind.KeyAgreement) && !doubleWrap)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "the key server's RecipientInfo is not a ktri, kari or double-wrap entry");
        }

        var kept = ed.RecipientInfos.Where(ri => !(ri.Kind == RecipientInfoKind.Other && ri.OriType == Oids.KeyReleaseOri)).ToList();
        if (kept.Count == ed.RecipientInfos.Count)
        {
            throw new CmsRewrapException(CmsRewrapFailure.NotForThisList, "the message has no key-release entry");
        }

        bool anyPwriOrOri = doubleWrap || kept.Any(r => r.Kind is RecipientInfoKind.Password or RecipientInfoKind.Other);
        bool allV0 = mine.Version == 0 && kept.All(r => r.Version == 0);
        int version = EnvelopeRewrap.OutputVersion(ed, anyPwriOrOri, allV0);
        return EnvelopeAssembler.Assemble(envelope.ContentType, version, ed, kept.Select(k => k.Encoded).ToList(), [recipientInfo.ToArray()]);
    }
}
