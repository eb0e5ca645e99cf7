using MilterSecureList.Cms.Tests.Infrastructure;

namespace MilterSecureList.Cms.Tests;

/// <summary>CmsDecryptor.DecryptPooled (the gateway's inbound path) against CmsDecryptor.Decrypt on what openssl
/// sends: AES-CBC decrypted in place from the message, and the forms that take the copying path (BER streamed
/// content in pieces, GCM, 3DES); altered ciphertext fails the same way in both.</summary>
public class PooledDecryptionTests
{
    private static readonly TestPki s_pki = TestPki.Shared;

    [Theory]
    [InlineData("aes256-cbc", new[] { "-aes256" })]
    [InlineData("aes128-cbc-ecdh", new[] { "-aes128" })]
    [InlineData("stream-ber", new[] { "-aes256", "-stream" })]
    [InlineData("aes256-gcm", new[] { "-aes-256-gcm" })]
    [InlineData("3des", new string[0])]
    public void PooledPlaintextIsWhatDecryptReturns(string name, string[] extra)
    {
        TestIdentity reader = s_pki.Get(name.EndsWith("-ecdh", StringComparison.Ordinal) ? "member3-ec" : "member1", name.EndsWith("-ecdh", StringComparison.Ordinal) ? "p256" : "rsa");
        byte[] plain = Plaintexts.MimeEntity(name);
        byte[] message = Peers.OpensslEncrypt(plain, [reader], extra);
        using ListKey key = reader.ToListKey();

        using PooledPlaintext pooled = CmsDecryptor.DecryptPooled(message, key);

        Assert.Equal(plain, pooled.Span.ToArray());
        Assert.Equal(CmsDecryptor.Decrypt(message, key), pooled.Span.ToArray());
    }

    [Fact]
    public void AlteredCiphertextFailsAsDecryptFails()
    {
        TestIdentity reader = s_pki.Get("member1");
        byte[] message = Peers.OpensslEncrypt(Plaintexts.MimeEntity("altered"), [reader], "-aes256");
        // CBC: this byte of the block before the last flips the last plaintext byte, the padding length (1-16), to 0x4a
        // or more: the padding never decodes.
        message[^17] ^= 0x5a;
        using ListKey key = reader.ToListKey();

        CmsRewrapException pooled = Assert.Throws<CmsRewrapException>(() => CmsDecryptor.DecryptPooled(message, key).Dispose());
        CmsRewrapException copied = Assert.Throws<CmsRewrapException>(() => CmsDecryptor.Decrypt(message, key));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, pooled.Reason);
        Assert.Equal(copied.Reason, pooled.Reason);
        Assert.Equal(copied.Message, pooled.Message);
    }

    [Fact]
    public void ADisposedPlaintextCannotBeReadAgain()
    {
        TestIdentity reader = s_pki.Get("member1");
        using ListKey key = reader.ToListKey();
        PooledPlaintext pooled = CmsDecryptor.DecryptPooled(Peers.OpensslEncrypt(Plaintexts.MimeEntity("once"), [reader], "-aes256"), key);
        pooled.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pooled.Span.Length);
    }
}
