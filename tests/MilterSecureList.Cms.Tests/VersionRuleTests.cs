using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>RFC 5652 §6.1 version rule and verbatim originatorInfo / unprotectedAttrs (messages from .NET EnvelopedCms,
/// which writes both when asked; it also writes OAEP parameters with explicit NULLs, docs/cms.md §6.1).</summary>
public class VersionRuleTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    [Theory]
    [InlineData(false, false, 0)]
    [InlineData(true, false, 2)]
    [InlineData(false, true, 2)]
    public void VersionFollowsRfc5652AndExtrasAreKeptVerbatim(bool originatorCerts, bool unprotectedAttrs, int expectedVersion)
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity m1 = s_pki.Get("member1");
        byte[] plain = Plaintexts.MimeEntity("version rule");
        var cms = new EnvelopedCms(new ContentInfo(plain), new AlgorithmIdentifier(new Oid(Oids.Aes128Cbc)));
        if (originatorCerts)
        {
            cms.Certificates.Add(s_pki.Get("sender").Certificate);
        }

        if (unprotectedAttrs)
        {
            cms.UnprotectedAttributes.Add(new Pkcs9DocumentDescription("unprotected attribute"));
        }

        // OAEP-SHA256 as .NET writes it: hash AlgorithmIdentifiers WITH NULL parameters.
        cms.Encrypt(new System.Security.Cryptography.Pkcs.CmsRecipient(list.Certificate, RSAEncryptionPadding.OaepSHA256));
        byte[] input = cms.Encode();
        using ListKey listKey = list.ToListKey();

        RewrapResult r = SessionKeyRewrapper.Rewrap(input, [listKey], [CmsRecipient.FromCertificate(m1.Certificate)]);

        Assert.Equal(expectedVersion, r.Version);
        EnvelopedDataAsn a = CmsEnvelopeInfo.Parse(input).Enveloped;
        EnvelopedDataAsn b = CmsEnvelopeInfo.Parse(r.ContentInfo).Enveloped;
        Assert.Equal(a.OriginatorInfo?.ToArray(), b.OriginatorInfo?.ToArray());
        EnvelopeAssert.EncryptedContentUnchanged(input, r.ContentInfo);

        var back = new EnvelopedCms();
        back.Decode(r.ContentInfo);
        Assert.Equal(expectedVersion, back.Version);
        Assert.Equal(originatorCerts ? 1 : 0, back.Certificates.Count);
        Assert.Equal(unprotectedAttrs ? 1 : 0, back.UnprotectedAttributes.Count);
        Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(r.ContentInfo, m1));
        Assert.Equal(plain, Peers.OpensslDecrypt(r.ContentInfo, m1));
    }

    [Fact]
    public void ComputeVersionCoversEveryRule()
    {
        Assert.Equal(0, EnvelopedDataAsn.ComputeEnvelopedDataVersion(null, false, false, true));
        Assert.Equal(2, EnvelopedDataAsn.ComputeEnvelopedDataVersion(null, false, false, false)); // kari / SKI / kekri
        Assert.Equal(2, EnvelopedDataAsn.ComputeEnvelopedDataVersion(null, true, false, true));   // unprotectedAttrs
        Assert.Equal(3, EnvelopedDataAsn.ComputeEnvelopedDataVersion(null, false, true, false));  // pwri or ori
        // originatorInfo with an "other" certificate [3] → 4; with a v2 attribute certificate [2] → 3.
        Assert.Equal(4, EnvelopedDataAsn.ComputeEnvelopedDataVersion(OriginatorInfoAsn.Decode(Convert.FromHexString("A006A004A3020500")), false, false, true));
        Assert.Equal(3, EnvelopedDataAsn.ComputeEnvelopedDataVersion(OriginatorInfoAsn.Decode(Convert.FromHexString("A006A004A2020500")), false, false, true));
        Assert.Equal(4, EnvelopedDataAsn.ComputeEnvelopedDataVersion(OriginatorInfoAsn.Decode(Convert.FromHexString("A006A104A1020500")), false, false, true));
        Assert.Equal(2, EnvelopedDataAsn.ComputeEnvelopedDataVersion(OriginatorInfoAsn.Decode(Convert.FromHexString("A000")), false, false, true));
    }
}
