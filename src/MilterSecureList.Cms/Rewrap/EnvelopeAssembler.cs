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
internal static class EnvelopeAssembler
{
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

        var oidWriter = new AsnWriter(AsnEncodingRules.DER);
        oidWriter.WriteObjectIdentifier(contentType);
        byte[] oid = oidWriter.Encode();

        long setContent = 0;
        foreach (ReadOnlyMemory<byte> k in kept)
        {
            setContent += k.Length;
        }

        foreach (byte[] m in members)
        {
            setContent += m.Length;
        }

        long edContent = 3 + (ed.OriginatorInfo?.Length ?? 0) + DerHeader.TlvSize(setContent) + ed.EncryptedContentInfo.Encoded.Length;
        foreach (ReadOnlyMemory<byte> t in ed.Trailer)
        {
            edContent += t.Length;
        }

        long explicitContent = DerHeader.TlvSize(edContent);
        long ciContent = oid.Length + DerHeader.TlvSize(explicitContent);
        long total = DerHeader.TlvSize(ciContent);
        if (total > Array.MaxLength)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.LimitExceeded, "the re-wrapped message would exceed the largest array size");
        }

        byte[] output = GC.AllocateUninitializedArray<byte>((int)total);
        Span<byte> o = output;
        int p = DerHeader.Write(o, 0x30, ciContent);
        oid.CopyTo(o[p..]);
        p += oid.Length;
        p += DerHeader.Write(o[p..], 0xA0, explicitContent);
        p += DerHeader.Write(o[p..], 0x30, edContent);
        o[p++] = 0x02;
        o[p++] = 0x01;
        o[p++] = (byte)version;
        if (ed.OriginatorInfo is { } oi)
        {
            oi.Span.CopyTo(o[p..]);
            p += oi.Length;
        }

        p += DerHeader.Write(o[p..], 0x31, setContent);
        foreach (ReadOnlyMemory<byte> k in kept)
        {
            k.Span.CopyTo(o[p..]);
            p += k.Length;
        }

        foreach (byte[] m in members)
        {
            m.CopyTo(o[p..]);
            p += m.Length;
        }

        ed.EncryptedContentInfo.Encoded.Span.CopyTo(o[p..]);
        p += ed.EncryptedContentInfo.Encoded.Length;
        foreach (ReadOnlyMemory<byte> t in ed.Trailer)
        {
            t.Span.CopyTo(o[p..]);
            p += t.Length;
        }

        if (p != output.Length)
        {
            throw new InvalidOperationException("internal error: envelope size mismatch");
        }

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
