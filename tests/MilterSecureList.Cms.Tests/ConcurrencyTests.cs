using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>The daemon keeps CmsRecipient and ListKey objects across messages and handles several connections at
/// once: the same objects are used from many threads. Output order must follow the member order.</summary>
public class ConcurrencyTests
{
    [Fact]
    public void SharedRecipientsAndListKeyWorkFromManyThreadsAndKeepMemberOrder()
    {
        TestPki pki = TestPki.Shared;
        TestIdentity list = pki.Get("list-rsa", "rsa");
        TestIdentity m1 = pki.Get("member1");
        TestIdentity m2 = pki.Get("member2");
        TestIdentity m3 = pki.Get("member3-ec", "p256");
        byte[] plain = Plaintexts.MimeEntity("concurrent");
        byte[] input = Peers.OpensslEncrypt(plain, [list], "-aes256");
        using ListKey listKey = list.ToListKey();
        // 100 members (above the parallel threshold) cycling over three real identities.
        CmsRecipient[] shared = [CmsRecipient.FromCertificate(m1.Certificate), CmsRecipient.FromCertificate(m2.Certificate, true),
            CmsRecipient.FromCertificate(m3.Certificate)];
        CmsRecipient[] members = Enumerable.Range(0, 100).Select(i => shared[i % 3]).ToArray();

        // Half the messages with one shared key agreement (EC members' entries last, in member order within it),
        // half with one per member (every RecipientInfo in member order).
        RewrapResult[] results = new RewrapResult[8];
        Parallel.For(0, results.Length, i => results[i] = SessionKeyRewrapper.Rewrap(input, [listKey], members,
            new CmsRewrapOptions { ParallelThreshold = 10, ShareKeyAgreement = i % 2 == 0 }));
        CmsRecipient[] sharedOrder = [.. members.Where(m => m != shared[2]), .. members.Where(m => m == shared[2])];

        for (int n = 0; n < results.Length; n++)
        {
            RewrapResult r = results[n];
            CmsRecipient[] expected = n % 2 == 0 ? sharedOrder : members;
            Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(r.ContentInfo, m1));
            Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(r.ContentInfo, m2));
            Assert.Equal(plain, CmsDecryptor.Decrypt(r.ContentInfo, m3.Certificate, m3.Key));
            CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(r.ContentInfo);
            Assert.Equal(100, info.Recipients.Count);
            for (int i = 0; i < 100; i++)
            {
                Assert.True(info.Recipients[i].Names(expected[i].Certificate), $"recipient {i} is out of order");
            }
        }
    }
}
