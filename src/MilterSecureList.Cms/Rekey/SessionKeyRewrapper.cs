using System.Formats.Asn1;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms;

/// <summary>Re-key mode: recover the content key from the list's RecipientInfo and write one RecipientInfo per
/// member; everything else is copied as the exact input bytes (docs/cms.md §1).</summary>
public static class SessionKeyRewrapper
{
    /// <summary>Re-wrap <paramref name="contentInfo"/> (DER or BER ContentInfo) for <paramref name="members"/>.</summary>
    /// <exception cref="CmsRewrapException">Not enveloped, not for this list, malformed, unsupported, limits.</exception>
    public static RewrapResult Rewrap(ReadOnlyMemory<byte> contentInfo, IReadOnlyList<ListKey> listKeys,
        IReadOnlyList<CmsRecipient> members, CmsRewrapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(listKeys);
        ArgumentNullException.ThrowIfNull(members);
        options ??= CmsRewrapOptions.Default;
        if (listKeys.Count == 0)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.InvalidArgument, "no list key given");
        }

        (ContentInfoAsn ci, EnvelopedDataAsn ed) = Parse(contentInfo, options);

        // Find the list's RecipientInfo (public data only; no private-key work yet).
        int listIndex = -1;
        ListKey? matched = null;
        for (int i = 0; i < ed.RecipientInfos.Count && matched is null; i++)
        {
            matched = FindListKey(ed.RecipientInfos[i], listKeys);
            listIndex = i;
        }

        if (matched is null)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.NotForThisList,
                "the message is not encrypted to the list certificate (SHA-256 " + string.Join(" or ", listKeys.Select(k => k.Sha256Fingerprint)) + ")");
        }

        string cipher = ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm;
        int cekLength = ContentCiphers.KeyLengthOrThrow(ed);

        var kept = new List<RecipientInfoAsn>();
        if (options.KeepOtherRecipientInfos)
        {
            foreach (RecipientInfoAsn ri in ed.RecipientInfos)
            {
                if (!NamesOnlyListKeys(ri, listKeys))
                {
                    kept.Add(ri);
                }
            }
        }

        if (members.Count + kept.Count == 0)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.InvalidArgument, "the list has no members to wrap for");
        }

        byte[] cek;
        try
        {
            cek = ContentKeyRecovery.Recover(ed.RecipientInfos[listIndex], matched, cekLength);
        }
        catch (UnsupportedCmsException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, e.Message);
        }
        catch (AsnContentException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "malformed list RecipientInfo: " + e.Message, e);
        }

        byte[][] encoded;
        try
        {
            encoded = WrapForMembers(members, cek, options);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cek);
        }

        bool pwriOrOri = kept.Any(r => r.Kind is RecipientInfoKind.Password or RecipientInfoKind.Other);
        bool allV0 = kept.All(r => r.Version == 0); // our member RIs are IASN ktri (v0) or kari (v3)
        allV0 &= members.All(m => m.KeyTransport != CmsKeyTransport.EcdhStdSha256Aes256Wrap);
        int version = OutputVersion(ed, pwriOrOri, allV0);

        byte[] output = EnvelopeAssembler.Assemble(ci.ContentType, version, ed, kept.Select(k => k.Encoded).ToList(), encoded,
            options.SortRecipientInfos);
        return new RewrapResult(output, members.Count, ed.IsAuthEnveloped, kept.Count, matched, version, cipher);
    }

    /// <summary>The version of the rebuilt envelope: RFC 5652 §6.1 for EnvelopedData (recomputed, because the
    /// RecipientInfos changed), always 0 for AuthEnvelopedData (RFC 5083 §2.1).</summary>
    internal static int OutputVersion(EnvelopedDataAsn ed, bool anyPwriOrOri, bool allRecipientInfosVersion0)
    {
        if (ed.IsAuthEnveloped)
        {
            return 0;
        }

        OriginatorInfoAsn? originator = null;
        if (ed.OriginatorInfo is { } oi)
        {
            try
            {
                originator = OriginatorInfoAsn.Decode(oi);
            }
            catch (AsnContentException e)
            {
                throw new CmsRewrapException(CmsRewrapFailure.Malformed, "malformed originatorInfo: " + e.Message, e);
            }
        }

        return EnvelopedDataAsn.ComputeEnvelopedDataVersion(originator, ed.HasUnprotectedAttributes, anyPwriOrOri, allRecipientInfosVersion0);
    }

    /// <summary>A cheap look at a ContentInfo: content type, recipients, double-wrap presence. No private-key work.</summary>
    /// <exception cref="CmsRewrapException">Malformed input or limits.</exception>
    public static CmsEnvelopeInfo Inspect(ReadOnlyMemory<byte> contentInfo, CmsRewrapOptions? options = null)
    {
        options ??= CmsRewrapOptions.Default;
        ContentInfoAsn ci = ParseContentInfo(contentInfo, options);
        if (ci.ContentType is not (Oids.EnvelopedData or Oids.AuthEnvelopedData))
        {
            return new CmsEnvelopeInfo(ci.ContentType, -1, null, []);
        }

        EnvelopedDataAsn ed = ParseEnveloped(ci, options);
        var ids = new List<CmsRecipientIdentifier>();
        foreach (RecipientInfoAsn ri in ed.RecipientInfos)
        {
            if (ri.KeyTrans is { } ktri)
            {
                ids.Add(new CmsRecipientIdentifier(ri.Kind, ktri.Rid, null));
            }
            else if (ri.KeyAgree is { } kari)
            {
                foreach ((RecipientIdentifierAsn rid, _) in kari.RecipientEncryptedKeys)
                {
                    ids.Add(new CmsRecipientIdentifier(ri.Kind, rid, null));
                }
            }
            else if (ri.Kind == RecipientInfoKind.Other && ri.OriType == Oids.DoubleWrapOri)
            {
                // Name the outer layer's recipient (the server or a member), so the filter can match server keys.
                DoubleWrapRecipientInfoAsn dw;
                try
                {
                    dw = DoubleWrapRecipientInfoAsn.Decode(ri.OriValue);
                }
                catch (AsnContentException e)
                {
                    throw new CmsRewrapException(CmsRewrapFailure.Malformed, "malformed double-wrap RecipientInfo: " + e.Message, e);
                }
                catch (UnsupportedCmsException e)
                {
                    throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, e.Message, e);
                }

                if (dw.Outer.KeyTrans is { } outerKtri)
                {
                    ids.Add(new CmsRecipientIdentifier(ri.Kind, outerKtri.Rid, ri.OriType));
                }
                else
                {
                    foreach ((RecipientIdentifierAsn rid, _) in dw.Outer.KeyAgree!.Value.RecipientEncryptedKeys)
                    {
                        ids.Add(new CmsRecipientIdentifier(ri.Kind, rid, ri.OriType));
                    }
                }
            }
            else
            {
                ids.Add(new CmsRecipientIdentifier(ri.Kind, null, ri.OriType));
            }
        }

        return new CmsEnvelopeInfo(ci.ContentType, ed.Version, ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm, ids);
    }

    internal static (ContentInfoAsn, EnvelopedDataAsn) Parse(ReadOnlyMemory<byte> contentInfo, CmsRewrapOptions options)
    {
        ContentInfoAsn ci = ParseContentInfo(contentInfo, options);
        if (ci.ContentType is not (Oids.EnvelopedData or Oids.AuthEnvelopedData))
        {
            CmsRewrapException.Throw(CmsRewrapFailure.NotEnvelopedData,
                $"the CMS content type is {ci.ContentType}, not EnvelopedData or AuthEnvelopedData");
        }

        return (ci, ParseEnveloped(ci, options));
    }

    private static ContentInfoAsn ParseContentInfo(ReadOnlyMemory<byte> contentInfo, CmsRewrapOptions options)
    {
        if (contentInfo.Length > options.MaxInputBytes)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.LimitExceeded, $"the CMS message is larger than {options.MaxInputBytes} bytes");
        }

        try
        {
            return ContentInfoAsn.Decode(contentInfo);
        }
        catch (AsnContentException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "malformed CMS ContentInfo: " + e.Message, e);
        }
    }

    private static EnvelopedDataAsn ParseEnveloped(ContentInfoAsn ci, CmsRewrapOptions options)
    {
        bool auth = ci.ContentType == Oids.AuthEnvelopedData;
        string what = auth ? "AuthEnvelopedData" : "EnvelopedData";
        try
        {
            return EnvelopedDataAsn.Decode(ci.Content, auth, options.MaxInputRecipientInfos);
        }
        catch (AsnContentException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, $"malformed {what}: {e.Message}", e);
        }
        catch (UnsupportedCmsException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"unsupported {what}: {e.Message}", e);
        }
        catch (LimitExceededException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.LimitExceeded, $"{what}: {e.Message}", e);
        }
    }

    private static ListKey? FindListKey(in RecipientInfoAsn ri, IReadOnlyList<ListKey> listKeys)
    {
        foreach (ListKey k in listKeys)
        {
            if (ri.KeyTrans is { } ktri && k.Matches(ktri.Rid))
            {
                return k;
            }

            if (ri.KeyAgree is { } kari)
            {
                foreach ((RecipientIdentifierAsn rid, _) in kari.RecipientEncryptedKeys)
                {
                    if (k.Matches(rid))
                    {
                        return k;
                    }
                }
            }
        }

        return null;
    }

    /// <summary>True for a RecipientInfo that only addresses list keys (it is replaced by the members').</summary>
    private static bool NamesOnlyListKeys(in RecipientInfoAsn ri, IReadOnlyList<ListKey> listKeys)
    {
        if (ri.KeyTrans is { } ktri)
        {
            return listKeys.Any(k => k.Matches(ktri.Rid));
        }

        if (ri.KeyAgree is { } kari)
        {
            return kari.RecipientEncryptedKeys.Count > 0
                && kari.RecipientEncryptedKeys.All(rek => listKeys.Any(k => k.Matches(rek.Rid)));
        }

        return false;
    }

    private static byte[][] WrapForMembers(IReadOnlyList<CmsRecipient> members, byte[] cek, CmsRewrapOptions options)
    {
        // With a shared key agreement, EC members leave the per-member list and get one RecipientInfo per curve,
        // after the others' (in member order within each; the order of a SET OF carries no meaning).
        IReadOnlyList<CmsRecipient> single = members;
        List<List<CmsRecipient>> shared = [];
        if (options.ShareKeyAgreement)
        {
            single = members.Where(m => m.KeyTransport != CmsKeyTransport.EcdhStdSha256Aes256Wrap).ToList();
            shared = members.Where(m => m.KeyTransport == CmsKeyTransport.EcdhStdSha256Aes256Wrap)
                .GroupBy(m => m.Curve.Oid.Value).Select(g => g.ToList()).ToList();
        }

        var encoded = new byte[single.Count + shared.Count][];
        try
        {
            if (single.Count >= options.ParallelThreshold)
            {
                // Results land in member order whatever the thread schedule (deterministic order).
                Parallel.For(0, single.Count, new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism },
                    i => encoded[i] = RecipientInfoWriter.Write(single[i], cek));
            }
            else
            {
                for (int i = 0; i < single.Count; i++)
                {
                    encoded[i] = RecipientInfoWriter.Write(single[i], cek);
                }
            }

            for (int g = 0; g < shared.Count; g++)
            {
                encoded[single.Count + g] = RecipientInfoWriter.WriteSharedKeyAgree(shared[g], cek, options.MaxDegreeOfParallelism,
                    options.ParallelThreshold);
            }
        }
        catch (AggregateException e) when (e.InnerException is CmsRewrapException inner)
        {
            throw new CmsRewrapException(inner.Reason, inner.Message, inner);
        }
        catch (AggregateException e) when (e.InnerException is CryptographicException ce)
        {
            throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument, "wrapping for a member failed: " + ce.Message, ce);
        }
        catch (CryptographicException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.InvalidArgument, "wrapping for a member failed: " + e.Message, e);
        }

        return encoded;
    }
}
