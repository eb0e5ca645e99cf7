using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms.Tests.Infrastructure;

public static class EnvelopeAssert
{
    /// <summary>The EncryptedContentInfo and everything after it are the exact input bytes (docs/cms.md §1).</summary>
    public static void EncryptedContentUnchanged(byte[] input, byte[] output)
    {
        EnvelopedDataAsn a = CmsEnvelopeInfo.Parse(input).Enveloped;
        EnvelopedDataAsn b = CmsEnvelopeInfo.Parse(output).Enveloped;
        Assert.True(a.EncryptedContentInfo.Encoded.Span.SequenceEqual(b.EncryptedContentInfo.Encoded.Span), "EncryptedContentInfo changed");
        Assert.Equal(a.Trailer.Count, b.Trailer.Count);
        for (int i = 0; i < a.Trailer.Count; i++)
        {
            Assert.True(a.Trailer[i].Span.SequenceEqual(b.Trailer[i].Span), "attributes/mac changed");
        }
    }
}
