using System.Formats.Asn1;

namespace MilterSecureList.Cms.Asn1;

/// <summary>Context-specific tags used by RFC 5652 (IMPLICIT TAGS module unless EXPLICIT is written).</summary>
internal static class AsnTags
{
    public static readonly Asn1Tag Context0 = new(TagClass.ContextSpecific, 0);
    public static readonly Asn1Tag Context1 = new(TagClass.ContextSpecific, 1);
    public static readonly Asn1Tag Context2 = new(TagClass.ContextSpecific, 2);
    public static readonly Asn1Tag Context3 = new(TagClass.ContextSpecific, 3);
    public static readonly Asn1Tag Context4 = new(TagClass.ContextSpecific, 4);
    public static readonly Asn1Tag Constructed0 = new(TagClass.ContextSpecific, 0, isConstructed: true);
    public static readonly Asn1Tag Constructed1 = new(TagClass.ContextSpecific, 1, isConstructed: true);
    public static readonly Asn1Tag Constructed2 = new(TagClass.ContextSpecific, 2, isConstructed: true);
    public static readonly Asn1Tag Constructed4 = new(TagClass.ContextSpecific, 4, isConstructed: true);

    /// <summary>True when the tag matches class and number whatever its constructed bit (BER allows both for strings).</summary>
    public static bool Is(Asn1Tag tag, Asn1Tag expected) => tag.HasSameClassAndValue(expected);
}
