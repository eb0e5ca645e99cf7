using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;

namespace MilterSecureList.Cms.Rewrap;

/// <summary>What re-key and double-wrap differ in. Everything else is <see cref="EnvelopeRewrap.Run"/>.</summary>
internal interface IRewrapMode
{
    /// <summary>The RecipientInfo at <paramref name="index"/> that can carry our key material (for double-wrap, the
    /// outer layer of our OtherRecipientInfo), or null when that entry is not of this mode's kind.</summary>
    RecipientInfoAsn? KeySource(CmsEnvelopeInfo envelope, int index);

    /// <summary>True when the members' entries replace the RecipientInfo at <paramref name="index"/>; the others are
    /// copied unchanged when the options say so.</summary>
    bool IsReplaced(CmsEnvelopeInfo envelope, int index, IReadOnlyList<ListKey> keys);

    /// <summary>The refusal when no RecipientInfo names one of <paramref name="keys"/>.</summary>
    string NotAddressed(IReadOnlyList<ListKey> keys);

    /// <summary>The length of what is recovered from our RecipientInfo, given the content key's length.</summary>
    int MaterialLength(int contentKeyLength);

    /// <summary>The ListKeyIdentifier (DER) that each member's entry carries around the member's own RecipientInfo in an
    /// OtherRecipientInfo (double-wrap), copied from our entry at <paramref name="ours"/>; null when each member's entry
    /// is the member's RecipientInfo itself (re-key).</summary>
    byte[]? OriListKeyId(CmsEnvelopeInfo envelope, int ours);

    /// <summary>EC members on one curve share one KeyAgreeRecipientInfo, written after the other entries.</summary>
    bool SharesKeyAgreement(CmsRewrapOptions options);

    /// <summary>The members' entries are OtherRecipientInfos (RFC 5652 §6.1 version rule).</summary>
    bool MemberEntriesAreOri { get; }

    /// <summary>Every entry written for <paramref name="members"/> has RecipientInfo version 0 (RFC 5652 §6.1).</summary>
    bool MemberEntriesAreVersion0(IReadOnlyList<CmsRecipient> members);
}

/// <summary>The one re-wrap skeleton: find our RecipientInfo, recover the key material from it, write one entry per
/// member, assemble the envelope around the untouched EncryptedContentInfo (docs/cms.md §1). Works on an envelope
/// that was parsed once; the raw bytes are never read again.</summary>
internal static class EnvelopeRewrap
{
    public static RewrapResult Run<TMode>(CmsEnvelopeInfo envelope, IReadOnlyList<ListKey> keys,
        IReadOnlyList<CmsRecipient> members, CmsRewrapOptions options, TMode mode)
        where TMode : IRewrapMode
    {
        EnvelopedDataAsn ed = envelope.Enveloped;

        // Find our RecipientInfo (public data only; no private-key work yet).
        RecipientInfoAsn source = default;
        int ours = -1;
        ListKey? matched = null;
        for (int i = 0; i < ed.RecipientInfos.Count && matched is null; i++)
        {
            if (mode.KeySource(envelope, i) is { } candidate)
            {
                matched = keys.FirstOrDefault(k => k.IsAddressedBy(candidate));
                source = candidate;
                ours = i;
            }
        }

        if (matched is null)
        {
            throw new CmsRewrapException(CmsRewrapFailure.NotForThisList, mode.NotAddressed(keys));
        }

        string cipher = ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm;
        int cekLength = ContentCiphers.KeyLengthOrThrow(ed);

        var kept = new List<RecipientInfoAsn>();
        if (options.KeepOtherRecipientInfos)
        {
            for (int i = 0; i < ed.RecipientInfos.Count; i++)
            {
                if (!mode.IsReplaced(envelope, i, keys))
                {
                    kept.Add(ed.RecipientInfos[i]);
                }
            }
        }

        if (members.Count + kept.Count == 0)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.InvalidArgument, "the list has no members to wrap for");
        }

        bool anyPwriOrOri = kept.Any(r => r.Kind is RecipientInfoKind.Password or RecipientInfoKind.Other)
            || (members.Count > 0 && mode.MemberEntriesAreOri);
        bool allV0 = kept.All(r => r.Version == 0) && mode.MemberEntriesAreVersion0(members);
        int version = OutputVersion(ed, anyPwriOrOri, allV0);
        var entries = new MemberEntries(envelope.ContentType, version, ed, kept.Select(k => k.Encoded).ToList(), members,
            mode.OriListKeyId(envelope, ours), mode.SharesKeyAgreement(options), options);

        // A failed unwrap continues with other bytes of the same length, never an error (no padding oracle).
        byte[]? material = null;
        try
        {
            // With RSA members only, every entry's length is known now: the helpers copy the public parts of the output
            // while this thread does the private-key operation.
            entries.StartIfLaidOut();
            material = ContentKeyRecovery.Recover(source, matched, mode.MaterialLength(cekLength));
            byte[] output = WriteEntries(entries, material);
            return new RewrapResult(output, members.Count, ed.IsAuthEnveloped, kept.Count, matched, version, cipher);
        }
        finally
        {
            entries.Dispose(); // returns when no helper thread uses the material any more
            if (material is not null)
            {
                CryptographicOperations.ZeroMemory(material);
            }
        }
    }

    private static byte[] WriteEntries(MemberEntries entries, byte[] material)
    {
        try
        {
            return entries.Write(material);
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
    }

    /// <summary>Runs <paramref name="write"/> for each member, on all cores from the options' threshold up; results
    /// land in member order whatever the thread schedule.</summary>
    public static void ForEachMember(IReadOnlyList<CmsRecipient> members, byte[][] encoded, CmsRewrapOptions options,
        Func<CmsRecipient, byte[]> write)
    {
        if (members.Count >= options.ParallelThreshold)
        {
            Parallel.For(0, members.Count, new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism },
                i => encoded[i] = write(members[i]));
        }
        else
        {
            for (int i = 0; i < members.Count; i++)
            {
                encoded[i] = write(members[i]);
            }
        }
    }

    /// <summary>The version of the rebuilt envelope: RFC 5652 §6.1 for EnvelopedData (recomputed, because the
    /// RecipientInfos changed), always 0 for AuthEnvelopedData (RFC 5083 §2.1).</summary>
    internal static int OutputVersion(EnvelopedDataAsn ed, bool anyPwriOrOri, bool allRecipientInfosVersion0)
    {
        if (ed.IsAuthEnveloped)
        {
            return 0;
        }

        OriginatorInfoAsn? originator = ed.OriginatorInfo is { } oi
            ? DecoderBoundary.Decode(oi, OriginatorInfoAsn.Decode, "malformed originatorInfo")
            : null;
        return EnvelopedDataAsn.ComputeEnvelopedDataVersion(originator, ed.HasUnprotectedAttributes, anyPwriOrOri, allRecipientInfosVersion0);
    }
}
