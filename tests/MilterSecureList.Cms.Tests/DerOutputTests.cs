using System.Formats.Asn1;
using MilterSecureList.Cms.Rewrap;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>What we write is DER: with a DER input and <see cref="CmsRewrapOptions.SortRecipientInfos"/>, the whole
/// output passes a strict DER walk (definite minimal lengths, sorted SET OF); by default only the SET order differs.</summary>
public class DerOutputTests
{
    [Fact]
    public void SortedOutputOfADerInputIsStrictDer()
    {
        TestPki pki = TestPki.Shared;
        TestIdentity list = pki.Get("list-rsa", "rsa");
        byte[] input = Peers.OpensslEncrypt(Plaintexts.MimeEntity(), [list, pki.Get("sender")], "-aes-256-gcm");
        WalkDer(input); // the input itself is DER
        using ListKey lk = list.ToListKey();
        CmsRecipient[] members = [.. new[] { "member1", "member2", "outsider" }.Select(n => CmsRecipient.FromCertificate(pki.Get(n).Certificate)),
            CmsRecipient.FromCertificate(pki.Get("member3-ec", "p256").Certificate)];

        RewrapResult sorted = SessionKeyRewrapper.Rewrap(input, [lk], members, new CmsRewrapOptions { SortRecipientInfos = true });
        WalkDer(sorted.ContentInfo);
        Assert.Equal(Plaintexts.MimeEntity(), Peers.OpensslDecrypt(sorted.ContentInfo, pki.Get("member2")));

        RewrapResult memberOrder = SessionKeyRewrapper.Rewrap(input, [lk], members);
        Assert.Equal(sorted.ContentInfo.Length, memberOrder.ContentInfo.Length);
    }

    [Fact]
    public void DerSetOfComparisonPadsWithZeros()
    {
        Assert.True(EnvelopeAssembler.CompareDerSetOf([1, 2], [1, 3]) < 0);
        Assert.True(EnvelopeAssembler.CompareDerSetOf([1, 2, 1], [1, 2]) > 0);
        Assert.Equal(0, EnvelopeAssembler.CompareDerSetOf([1, 2, 0], [1, 2]));
        Assert.True(EnvelopeAssembler.CompareDerSetOf([0x30, 0x05], [0xA1, 0x01]) < 0);
    }

    /// <summary>Recursively re-read every element with DER rules (AsnReader checks minimal lengths and SET OF order).</summary>
    private static void WalkDer(ReadOnlyMemory<byte> data) => Walk(new AsnReader(data, AsnEncodingRules.DER));

    private static void Walk(AsnReader r)
    {
        while (r.HasData)
        {
            Asn1Tag tag = r.PeekTag();
            if (!tag.IsConstructed)
            {
                r.ReadEncodedValue();
            }
            else if (tag.HasSameClassAndValue(Asn1Tag.SetOf))
            {
                AsnReader set = r.ReadSetOf(); // throws if not in DER order
                Walk(set);
            }
            else
            {
                Walk(r.ReadSequence(tag));
            }
        }
    }
}
