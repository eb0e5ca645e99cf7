using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>Re-wrapping an inspected message never reads the raw bytes again (docs/design.md, "One parse per message").
/// Each test inspects a message, then breaks bytes that only a parser reads (tags of structures the engine does not
/// copy): the re-wrap of the inspected object must still succeed and decrypt, while any parse of the same bytes fails.
/// A second parse reintroduced anywhere in the re-wrap makes these tests fail.</summary>
public class OneParseTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    private static int OffsetOf(ReadOnlyMemory<byte> slice) =>
        MemoryMarshal.TryGetArray(slice, out ArraySegment<byte> segment) ? segment.Offset : throw new InvalidOperationException("not an array slice");

    /// <summary>Breaks the ContentInfo's and the EnvelopedData's SEQUENCE tags, which no engine copies.</summary>
    private static void BreakOuterStructure(byte[] message)
    {
        int enveloped = OffsetOf(ContentInfoAsn.Decode(message).Content);
        Assert.Equal(0x30, message[0]);
        Assert.Equal(0x30, message[enveloped]);
        message[0] = 0x05;
        message[enveloped] = 0x05;
    }

    [Fact]
    public void RekeyWorksOnTheInspectedObjectAfterTheBytesBreak()
    {
        TestIdentity list = s_pki.Get("list-rsa", "rsa");
        TestIdentity member = s_pki.Get("member1");
        byte[] plain = Plaintexts.MimeEntity("parsed once");
        byte[] message = CmsEncryptor.Encrypt(plain, [CmsRecipient.FromCertificate(list.Certificate)]);
        using ListKey listKey = list.ToListKey();
        CmsRecipient[] members = [CmsRecipient.FromCertificate(member.Certificate)];

        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(message);
        Assert.Same(listKey, info.FindListKey([listKey]));
        BreakOuterStructure(message);
        // The list's own RecipientInfo is replaced, so its SEQUENCE tag is read only by a parser.
        int listRi = OffsetOf(info.Enveloped.RecipientInfos.Single().Encoded);
        message[listRi] = 0x05;

        RewrapResult result = SessionKeyRewrapper.Rewrap(info, [listKey], members);

        Assert.Equal(plain, Peers.EnvelopedCmsDecrypt(result.ContentInfo, member));
        CmsRewrapException reparsed = Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Rewrap(message, [listKey], members));
        Assert.Equal(CmsRewrapFailure.Malformed, reparsed.Reason);
    }

    [Fact]
    public void DoubleWrapWorksOnTheInspectedObjectAfterTheBytesBreak()
    {
        TestIdentity server = s_pki.Get("server-rsa", "rsa");
        TestIdentity member = s_pki.Get("member1");
        byte[] listKek = RandomNumberGenerator.GetBytes(DoubleWrap.ListKeyLength);
        byte[] plain = Plaintexts.MimeEntity("parsed once, double-wrapped");
        byte[] message = DoubleWrap.Encrypt(plain, "crypto@lists.example.test", 1, listKek, server.Certificate);
        using ListKey serverKey = server.ToListKey();
        CmsRecipient[] members = [CmsRecipient.FromCertificate(member.Certificate)];

        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(message);
        Assert.True(info.HasDoubleWrap);
        BreakOuterStructure(message);
        // The DoubleWrapRecipientInfo's own SEQUENCE tag: read only when the entry is decoded, which inspection did.
        int dw = OffsetOf(info.Enveloped.RecipientInfos.Single().OriValue);
        Assert.Equal(0x30, message[dw]);
        message[dw] = 0x05;

        RewrapResult result = DoubleWrap.Rewrap(info, [serverKey], members);

        Assert.Equal(1, result.MembersWrapped);
        Assert.Equal(plain, DoubleWrap.Decrypt(result.ContentInfo, member.Certificate, member.Key, _ => listKek));
        Assert.Throws<CmsRewrapException>(() => DoubleWrap.Rewrap(message, [serverKey], members));
    }

    [Fact]
    public void AMessageThatIsNotEnvelopedIsRefusedByTheRewrapOfItsInspection()
    {
        byte[] data = [0x30, 0x0F, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01, 0xA0, 0x02, 0x04, 0x00];
        CmsEnvelopeInfo info = SessionKeyRewrapper.Inspect(data);
        Assert.False(info.IsEncrypted);
        using ListKey listKey = s_pki.Get("list-rsa", "rsa").ToListKey();
        CmsRecipient[] members = [CmsRecipient.FromCertificate(s_pki.Get("member1").Certificate)];
        Assert.Equal(CmsRewrapFailure.NotEnvelopedData,
            Assert.Throws<CmsRewrapException>(() => SessionKeyRewrapper.Rewrap(info, [listKey], members)).Reason);
        Assert.Equal(CmsRewrapFailure.NotEnvelopedData,
            Assert.Throws<CmsRewrapException>(() => DoubleWrap.Rewrap(info, [listKey], members)).Reason);
    }
}
