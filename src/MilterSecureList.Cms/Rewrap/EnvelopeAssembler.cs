using System.Formats.Asn1;
using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms.Rewrap;

/// <summary>Writes the re-wrapped ContentInfo into one exactly-sized array.</summary>
/// <remarks>
/// Layout (RFC 5652 §3, §6.1; RFC 5083 §2.1), definite lengths everywhere we write:
/// <code>
/// 30 L  ContentInfo
///   06 .. contentType
///   A0 L  [0] EXPLICIT
///     30 L  EnvelopedData | AuthEnvelopedData
///       02 01 vv               version (recomputed)
///       [A0 ..]                originatorInfo        verbatim
///       31 L { kept RIs verbatim, member RIs (DER) in member order }
///       30 ..                  EncryptedContentInfo  verbatim (may be BER)
///       [A1 ..] [04 ..] [A2 ..] attrs / mac          verbatim
/// </code>
/// The SET OF RecipientInfos is written in member order rather than DER-sorted: BER allows any order, every
/// reader accepts it, and sorting 10,000 entries whose bytes are random anyway buys nothing.
/// </remarks>
internal sealed class EnvelopeAssembler
{
    private readonly byte[] _oid;
    private readonly int _version;
    private readonly EnvelopedDataAsn _ed;
    private readonly IReadOnlyList<ReadOnlyMemory<byte>> _kept;
    private readonly long _setContent;
    private readonly long _edContent;
    private readonly long _explicitContent;
    private readonly long _ciContent;

    /// <summary>The layout of a re-wrapped ContentInfo whose SET OF RecipientInfos holds <paramref name="kept"/> and
    /// then <paramref name="entriesLength"/> bytes of member entries, computed before any byte is written: the engine
    /// writes the member entries straight into the output (<see cref="EntriesOffset"/>) while the rest is copied.</summary>
    public EnvelopeAssembler(string contentType, int version, EnvelopedDataAsn ed, IReadOnlyList<ReadOnlyMemory<byte>> kept, long entriesLength)
    {
        var oidWriter = new AsnWriter(AsnEncodingRules.DER);
        oidWriter.WriteObjectIdentifier(contentType);
        _oid = oidWriter.Encode();
        _version = version;
        _ed = ed;
        _kept = kept;

        _setContent = entriesLength;
        foreach (ReadOnlyMemory<byte> k in kept)
        {
            _setContent += k.Length;
        }

        long tail = ed.EncryptedContentInfo.Encoded.Length;
        foreach (ReadOnlyMemory<byte> t in ed.Trailer)
        {
            tail += t.Length;
        }

        _edContent = 3 + (ed.OriginatorInfo?.Length ?? 0) + DerHeader.TlvSize(_setContent) + tail;

        _explicitContent = DerHeader.TlvSize(_edContent);
        _ciContent = _oid.Length + DerHeader.TlvSize(_explicitContent);
        long total = DerHeader.TlvSize(_ciContent);
        if (total > Array.MaxLength)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.LimitExceeded, "the re-wrapped message would exceed the largest array size");
        }

        Length = (int)total;
        TailOffset = Length - (int)tail;
        EntriesOffset = TailOffset - (int)entriesLength;
    }

    /// <summary>The whole output's length.</summary>
    public int Length { get; }

    /// <summary>Where the member entries start (after the kept RecipientInfos).</summary>
    public int EntriesOffset { get; }

    /// <summary>Where the EncryptedContentInfo starts (after the member entries).</summary>
    public int TailOffset { get; }

    /// <summary>An output array of <see cref="Length"/> bytes, not cleared: every byte of it is written.</summary>
    public byte[] AllocateOutput() => GC.AllocateUninitializedArray<byte>(Length);

    /// <summary>Writes everything before the member entries: the headers, version, originatorInfo, the SET OF's header
    /// and the kept RecipientInfos.</summary>
    public void WriteHead(Span<byte> output)
    {
        Span<byte> o = output;
        int p = DerHeader.Write(o, 0x30, _ciContent);
        _oid.CopyTo(o[p..]);
        p += _oid.Length;
        p += DerHeader.Write(o[p..], 0xA0, _explicitContent);
        p += DerHeader.Write(o[p..], 0x30, _edContent);
        o[p++] = 0x02;
        o[p++] = 0x01;
        o[p++] = (byte)_version;
        if (_ed.OriginatorInfo is { } oi)
        {
            oi.Span.CopyTo(o[p..]);
            p += oi.Length;
        }

        p += DerHeader.Write(o[p..], 0x31, _setContent);
        foreach (ReadOnlyMemory<byte> k in _kept)
        {
            k.Span.CopyTo(o[p..]);
            p += k.Length;
        }

        if (p != EntriesOffset)
        {
            throw new InvalidOperationException("internal error: envelope size mismatch");
        }
    }

    /// <summary>Writes everything after the member entries: the EncryptedContentInfo and the trailer, verbatim.</summary>
    public void WriteTail(Span<byte> output)
    {
        int p = TailOffset;
        _ed.EncryptedContentInfo.Encoded.Span.CopyTo(output[p..]);
        p += _ed.EncryptedContentInfo.Encoded.Length;
        foreach (ReadOnlyMemory<byte> t in _ed.Trailer)
        {
            t.Span.CopyTo(output[p..]);
            p += t.Length;
        }

        if (p != Length)
        {
            throw new InvalidOperationException("internal error: envelope size mismatch");
        }
    }

    public static byte[] Assemble(string contentType, int version, EnvelopedDataAsn ed,
        IReadOnlyList<ReadOnlyMemory<byte>> kept, IReadOnlyList<byte[]> members, bool sortSetOf = false)
    {
        if (sortSetOf)
        {
            var all = new List<ReadOnlyMemory<byte>>(kept.Count + members.Count);
            all.AddRange(kept);
            all.AddRange(members.Select(m => (ReadOnlyMemory<byte>)m));
            all.Sort(static (a, b) => CompareDerSetOf(a.Span, b.Span));
            kept = all;
            members = [];
        }

        long entries = 0;
        foreach (byte[] m in members)
        {
            entries += m.Length;
        }

        var layout = new EnvelopeAssembler(contentType, version, ed, kept, entries);
        byte[] output = layout.AllocateOutput();
        layout.WriteHead(output);
        int p = layout.EntriesOffset;
        foreach (byte[] m in members)
        {
            m.CopyTo(output, p);
            p += m.Length;
        }

        layout.WriteTail(output);
        return output;
    }

    /// <summary>X.690 §11.6: SET OF components in ascending order of their encodings compared as octet strings,
    /// the shorter padded at the end with 0x00 octets.</summary>
    internal static int CompareDerSetOf(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int common = Math.Min(a.Length, b.Length);
        int c = a[..common].SequenceCompareTo(b[..common]);
        if (c != 0)
        {
            return c;
        }

        ReadOnlySpan<byte> rest = a.Length > b.Length ? a[common..] : b[common..];
        bool restIsZero = rest.IndexOfAnyExcept((byte)0) < 0;
        return restIsZero ? 0 : (a.Length > b.Length ? 1 : -1);
    }
}
