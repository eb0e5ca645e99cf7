using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms.Rewrap;

/// <summary>The members' entries of one re-wrap and where each goes in the output (docs/design.md, "Re-key: where the
/// time goes").</summary>
/// <remarks>
/// An RSA member's entry has a length known from the member alone (its KeyTransRecipientInfo ends in k ciphertext
/// bytes, inside double-wrap's OtherRecipientInfo when there is one), so it is written straight into the output: the
/// public part (wrapper header, identifier, algorithm) by the prework, the k bytes by the member's RSA operation. EC
/// members' KeyAgreeRecipientInfos are encoded whole once the key material is known and then copied in. Entries stay in
/// member order; shared key agreements (one per curve) follow them. With
/// <see cref="CmsRewrapOptions.SortRecipientInfos"/> the entries are written into a buffer of their own and sorted
/// into the output afterwards.
/// </remarks>
internal sealed class MemberEntries : IDisposable
{
    private readonly string _contentType;
    private readonly int _version;
    private readonly EnvelopedDataAsn _ed;
    private readonly IReadOnlyList<ReadOnlyMemory<byte>> _kept;
    private readonly IReadOnlyList<CmsRecipient> _members;
    private readonly byte[]? _listKeyId;
    private readonly bool _share;
    private readonly CmsRewrapOptions _options;
    private readonly int[] _rsa; // indices of the members written in place, in member order
    private readonly int[] _keyTransOffset; // per in-place member: where its KeyTransRecipientInfo starts in _buffer

    private byte[]?[]? _encoded; // per member: an EC member's whole entry (null for RSA members and shared ones)
    private List<byte[]>? _groups; // shared key agreements, after the member entries
    private int[]? _entryOffset; // per member: where its entry starts in _buffer; then the groups'
    private EnvelopeAssembler? _layout;
    private byte[]? _buffer; // the output, or with sorting the entries' own buffer
    private int _base; // where the entries start in _buffer
    private MemberWrapLoop? _loop;

    public MemberEntries(string contentType, int version, EnvelopedDataAsn ed, IReadOnlyList<ReadOnlyMemory<byte>> kept,
        IReadOnlyList<CmsRecipient> members, byte[]? listKeyId, bool shareKeyAgreement, CmsRewrapOptions options)
    {
        _contentType = contentType;
        _version = version;
        _ed = ed;
        _kept = kept;
        _members = members;
        _listKeyId = listKeyId;
        _share = shareKeyAgreement;
        _options = options;
        var rsa = new List<int>(members.Count);
        for (int i = 0; i < members.Count; i++)
        {
            if (members[i].KeyTransport != CmsKeyTransport.EcdhStdSha256Aes256Wrap)
            {
                rsa.Add(i);
            }
        }

        _rsa = rsa.ToArray();
        _keyTransOffset = new int[_rsa.Length];
    }

    /// <summary>When every entry's length is known before the key material (no EC member), lays out the output and starts
    /// the helpers on its public parts.</summary>
    public void StartIfLaidOut()
    {
        if (_rsa.Length == _members.Count)
        {
            _encoded = [];
            _groups = [];
            LayOut();
            _loop = NewLoop();
            _loop.Start();
        }
    }

    /// <summary>Writes every entry for <paramref name="material"/> and returns the whole output.</summary>
    public byte[] Write(byte[] material)
    {
        if (_loop is null)
        {
            EncodeKeyAgreements(material);
            LayOut();
            _loop = NewLoop();
            _loop.Start();
        }

        // A list whose RSA members' key objects would not fit the cache makes each for its one wrap: cycling them through
        // the cache would cost the same imports and also evict the keys of every smaller list.
        bool cache = FitsKeyObjectCache();
        _loop.Run(i => RecipientInfoWriter.WriteEncryptedKey(_members[_rsa[i]], material, _buffer.AsSpan(_keyTransOffset[i]), cache));
        if (_layout is not null)
        {
            return _buffer!;
        }

        // Sorted SET OF: the entries were written into their own buffer; slice them and let the assembler sort.
        var slices = new List<ReadOnlyMemory<byte>>(_kept.Count + _entryOffset!.Length);
        slices.AddRange(_kept);
        for (int i = 0; i < _entryOffset.Length; i++)
        {
            int end = i + 1 < _entryOffset.Length ? _entryOffset[i + 1] : _buffer!.Length;
            if (end > _entryOffset[i])
            {
                slices.Add(_buffer.AsMemory(_entryOffset[i], end - _entryOffset[i]));
            }
        }

        return EnvelopeAssembler.Assemble(_contentType, _version, _ed, slices, [], sortSetOf: true);
    }

    /// <summary>Returns when no helper runs any more (also after a failure).</summary>
    public void Dispose() => _loop?.Dispose();

    private int KeyTransLength(CmsRecipient member) => RecipientInfoWriter.KeyTransLength(member);

    private int HeaderLength(int keyTransLength) =>
        _listKeyId is null ? 0 : DoubleWrapRecipientInfoAsn.OriHeaderLength(_listKeyId.Length, keyTransLength);

    // EC members: one KeyAgreeRecipientInfo per member (wrapped like the others in double-wrap), or one per curve.
    private void EncodeKeyAgreements(byte[] material)
    {
        _encoded = new byte[_members.Count][];
        _groups = [];
        var single = new List<int>();
        var shared = new List<CmsRecipient>();
        for (int i = 0; i < _members.Count; i++)
        {
            if (_members[i].KeyTransport == CmsKeyTransport.EcdhStdSha256Aes256Wrap)
            {
                if (_share)
                {
                    shared.Add(_members[i]);
                }
                else
                {
                    single.Add(i);
                }
            }
        }

        var singleMembers = single.Select(i => _members[i]).ToList();
        var singleEncoded = new byte[single.Count][];
        EnvelopeRewrap.ForEachMember(singleMembers, singleEncoded, _options, m =>
        {
            byte[] ri = RecipientInfoWriter.Write(m, material);
            return _listKeyId is null ? ri : DoubleWrapRecipientInfoAsn.EncodeOri(_listKeyId, ri);
        });
        for (int j = 0; j < single.Count; j++)
        {
            _encoded[single[j]] = singleEncoded[j];
        }

        foreach (List<CmsRecipient> curve in shared.GroupBy(m => m.CurveOid).Select(g => g.ToList()))
        {
            _groups.Add(RecipientInfoWriter.WriteSharedKeyAgree(curve, material, _options.MaxDegreeOfParallelism, _options.ParallelThreshold));
        }
    }

    private void LayOut()
    {
        _entryOffset = new int[_members.Count + _groups!.Count];
        long length = 0;
        int r = 0;
        for (int i = 0; i < _members.Count; i++)
        {
            _entryOffset[i] = checked((int)length);
            if (r < _rsa.Length && _rsa[r] == i)
            {
                int keyTrans = KeyTransLength(_members[i]);
                _keyTransOffset[r++] = checked((int)length) + HeaderLength(keyTrans);
                length += HeaderLength(keyTrans) + keyTrans;
            }
            else
            {
                length += _encoded![i]?.Length ?? 0;
            }
        }

        for (int g = 0; g < _groups.Count; g++)
        {
            _entryOffset[_members.Count + g] = checked((int)length);
            length += _groups[g].Length;
        }

        if (_options.SortRecipientInfos)
        {
            if (length > Array.MaxLength)
            {
                CmsRewrapException.Throw(CmsRewrapFailure.LimitExceeded, "the re-wrapped message would exceed the largest array size");
            }

            _buffer = new byte[length];
            _base = 0;
        }
        else
        {
            _layout = new EnvelopeAssembler(_contentType, _version, _ed, _kept, length);
            _buffer = _layout.AllocateOutput();
            _base = _layout.EntriesOffset;
        }

        for (int i = 0; i < _entryOffset.Length; i++)
        {
            _entryOffset[i] += _base;
        }

        for (int j = 0; j < _keyTransOffset.Length; j++)
        {
            _keyTransOffset[j] += _base;
        }
    }

    private MemberWrapLoop NewLoop()
    {
        int dop = _options.MaxDegreeOfParallelism == -1 ? Environment.ProcessorCount : Math.Max(1, _options.MaxDegreeOfParallelism);
        // Below the threshold a helper thread costs more than it saves, even for the copy of a large content: waking a
        // pool thread on a busy machine took more CPU than the copy (bench/cms --against, 10 members).
        return new MemberWrapLoop(_rsa.Length, _rsa.Length >= _options.ParallelThreshold ? dop - 1 : 0, Prework);
    }

    // Everything but the RSA ciphertexts: no key material is needed for any of it.
    private void Prework()
    {
        byte[] buffer = _buffer!;
        if (_layout is not null)
        {
            _layout.WriteHead(buffer);
        }

        int r = 0;
        for (int i = 0; i < _members.Count; i++)
        {
            if (r < _rsa.Length && _rsa[r] == i)
            {
                CmsRecipient member = _members[i];
                int start = _keyTransOffset[r++];
                if (_listKeyId is not null)
                {
                    int keyTrans = KeyTransLength(member);
                    DoubleWrapRecipientInfoAsn.WriteOriHeader(buffer.AsSpan(start - HeaderLength(keyTrans)), _listKeyId, keyTrans);
                }

                RecipientInfoWriter.WriteKeyTransPrefix(member, buffer.AsSpan(start));
            }
            else if (_encoded![i] is { } entry)
            {
                entry.CopyTo(buffer, _entryOffset![i]);
            }
        }

        for (int g = 0; g < _groups!.Count; g++)
        {
            _groups[g].CopyTo(buffer, _entryOffset![_members.Count + g]);
        }

        if (_layout is not null)
        {
            _layout.WriteTail(buffer);
        }
    }

    private bool FitsKeyObjectCache()
    {
        long bytes = 0;
        foreach (int i in _rsa)
        {
            bytes += _members[i].RsaKeyObjectBytes;
        }

        return bytes <= CmsRecipient.KeyObjectCacheBytes;
    }
}
