using System.Security.Cryptography;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>PKCS#1 v1.5 key transport from the modulus and exponent alone (no key object, docs/design.md "Lists of
/// 100,000 members"): what it writes is what RSA decryption reads, and what OpenSSL refuses is a plain false.</summary>
public class RsaPublicEncryptionTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    [Fact]
    public void TheMembersPrivateKeyReadsWhatWasEncryptedFromTheNumbers()
    {
        TestIdentity member = s_pki.Get("member1");
        CmsRecipient recipient = CmsRecipient.FromDer(member.Certificate.RawData);
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] first = new byte[recipient.KeySizeBytes];
        byte[] second = new byte[recipient.KeySizeBytes];

        Assert.True(RsaPublicEncryption.IsAvailable);
        Assert.True(RsaPublicEncryption.TryEncryptPkcs1(recipient.RsaModulus.Span, recipient.RsaExponent.Span, cek, first));
        Assert.True(RsaPublicEncryption.TryEncryptPkcs1(recipient.RsaModulus.Span, recipient.RsaExponent.Span, cek, second));

        var key = (RSA)member.Key; // shared by the fixture: not disposed here
        Assert.Equal(cek, key.Decrypt(first, RSAEncryptionPadding.Pkcs1));
        Assert.Equal(cek, key.Decrypt(second, RSAEncryptionPadding.Pkcs1));
        Assert.NotEqual(first, second); // fresh random padding per encryption
    }

    [Fact]
    public void RefusedInputsAreFalseAndLeaveOpenSslUsable()
    {
        TestIdentity member = s_pki.Get("member1");
        CmsRecipient recipient = CmsRecipient.FromDer(member.Certificate.RawData);
        ReadOnlySpan<byte> n = recipient.RsaModulus.Span;
        ReadOnlySpan<byte> e = recipient.RsaExponent.Span;
        int k = recipient.KeySizeBytes;

        // More than k - 11 octets do not fit PKCS#1 v1.5 padding.
        Assert.False(RsaPublicEncryption.TryEncryptPkcs1(n, e, new byte[k - 10], new byte[k]));
        // A destination that is not the modulus length.
        Assert.False(RsaPublicEncryption.TryEncryptPkcs1(n, e, new byte[32], new byte[k - 1]));
        Assert.False(RsaPublicEncryption.TryEncryptPkcs1(n, e, new byte[32], new byte[k + 1]));
        // A zero modulus, an exponent not below the modulus, empty inputs.
        Assert.False(RsaPublicEncryption.TryEncryptPkcs1(new byte[k], e, new byte[32], new byte[k]));
        Assert.False(RsaPublicEncryption.TryEncryptPkcs1(n, n, new byte[32], new byte[k]));
        Assert.False(RsaPublicEncryption.TryEncryptPkcs1([], e, new byte[32], new byte[k]));
        Assert.False(RsaPublicEncryption.TryEncryptPkcs1(n, e, [], new byte[k]));

        // .NET's own next operation on this thread is not confused by an error left behind.
        var key = (RSA)member.Key; // shared by the fixture: not disposed here
        byte[] wrapped = key.Encrypt(new byte[16], RSAEncryptionPadding.Pkcs1);
        Assert.Equal(new byte[16], key.Decrypt(wrapped, RSAEncryptionPadding.Pkcs1));
    }
}
