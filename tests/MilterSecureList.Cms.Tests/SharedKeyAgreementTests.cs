using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>EC members on one curve share one ephemeral key: one KeyAgreeRecipientInfo with a RecipientEncryptedKey
/// per member (RFC 5652 §6.2.2, RFC 5753 §3.1.1), and every member still reads the message.</summary>
public class SharedKeyAgreementTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    private static TestIdentity[] EcMembers() =>
        [s_pki.Get("member3-ec", "p256"), s_pki.Get("member4-ec", "p256"), s_pki.Get("member5-ec", "p256"), s_pki.Get("member-p384", "p384")];

    private static (byte[] Plain, byte[] Input, RewrapResult Result, EnvelopedDataAsn Output) Rewrap(CmsRewrapOptions options)
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        byte[] plain = Plaintexts.MimeEntity("shared kari");
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-aes256");
        using ListKey listKey = list.ToListKey();
        CmsRecipient[] members = [CmsRecipient.FromCertificate(s_pki.Get("member1").Certificate), .. EcMembers().Select(m => CmsRecipient.FromCertificate(m.Certificate))];
        RewrapResult result = SessionKeyRewrapper.Rewrap(input, [listKey], members, options);
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(result.ContentInfo).Enveloped;
        return (plain, input, result, ed);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(2)] // the parallel path, each worker with its own copy of the ephemeral key
    public void EcMembersOnOneCurveShareOneKeyAgreeRecipientInfoAndAllRead(int parallelThreshold)
    {
        (byte[] plain, byte[] input, RewrapResult result, EnvelopedDataAsn ed) = Rewrap(new CmsRewrapOptions { ParallelThreshold = parallelThreshold });

        Assert.Equal(5, result.MembersWrapped);
        Assert.Equal(3, ed.RecipientInfos.Count); // member1's ktri, one kari for P-256, one for P-384
        KeyAgreeRecipientInfoAsn[] karis = ed.RecipientInfos.Where(r => r.KeyAgree is not null).Select(r => r.KeyAgree!.Value).ToArray();
        Assert.Equal([3, 1], karis.Select(k => k.RecipientEncryptedKeys.Count).Order().Reverse());
        EnvelopeAssert.EncryptedContentUnchanged(input, result.ContentInfo);
        Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, s_pki.Get("member1")));
        foreach (TestIdentity m in EcMembers())
        {
            Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m));
            Assert.Equal(plain, CmsDecryptor.Decrypt(result.ContentInfo, m.Certificate, m.Key));
        }

        Assert.Null(Peers.OpensslDecrypt(result.ContentInfo, s_pki.Get("outsider-ec", "p256")));
    }

    [Fact]
    public void TheSwitchWritesOneEphemeralKeyPerMember()
    {
        (byte[] plain, _, RewrapResult result, EnvelopedDataAsn ed) = Rewrap(new CmsRewrapOptions { ShareKeyAgreement = false });

        Assert.Equal(5, ed.RecipientInfos.Count);
        var originators = ed.RecipientInfos.Where(r => r.KeyAgree is not null)
            .Select(r => Convert.ToHexString(r.KeyAgree!.Value.OriginatorPublicKey!.Value.Span)).ToList();
        Assert.Equal(4, originators.Distinct().Count());
        foreach (TestIdentity m in EcMembers())
        {
            Assert.Equal(plain, Peers.OpensslDecrypt(result.ContentInfo, m));
        }
    }
}
