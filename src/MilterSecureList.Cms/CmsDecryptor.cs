using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;

namespace MilterSecureList.Cms;

/// <summary>Member-side decryption of ordinary S/MIME (ktri or kari; EnvelopedData or AuthEnvelopedData) and,
/// through <see cref="DoubleWrap.Decrypt"/>, of double-wrapped messages: for the member tool and the gateway's
/// inbound mail, never the re-key path (which does not touch the content).</summary>
public static class CmsDecryptor
{
    /// <summary>Decrypt an ordinary S/MIME ContentInfo addressed (ktri or kari) to <paramref name="certificate"/>.</summary>
    /// <exception cref="CmsRewrapException">NotForThisList when no RecipientInfo names the certificate;
    /// DecryptionFailed for a wrong key or altered content; Malformed/UnsupportedAlgorithm otherwise.</exception>
    public static byte[] Decrypt(ReadOnlyMemory<byte> contentInfo, X509Certificate2 certificate, AsymmetricAlgorithm privateKey)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(privateKey);
        using var me = new ListKey(certificate, privateKey, ownsKey: false);
        return Decrypt(contentInfo, me);
    }

    /// <summary>The same with the key prepared once (<see cref="ListKey"/> imports the private key into OpenSSL, which
    /// costs more than the decryption): for callers that decrypt many messages with one key.</summary>
    public static byte[] Decrypt(ReadOnlyMemory<byte> contentInfo, ListKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return DecryptOrdinary(CmsEnvelopeInfo.Parse(contentInfo).Enveloped, key);
    }

    /// <summary>The same into a buffer from the shared pool (the gateway decrypts every inbound message this way:
    /// docs/design.md, "Gateway performance"); AES-CBC content is decrypted straight from its place in CONTENTINFO.
    /// Dispose the result to zero the plaintext and return the buffer.</summary>
    public static PooledPlaintext DecryptPooled(ReadOnlyMemory<byte> contentInfo, ListKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        EnvelopedDataAsn ed = CmsEnvelopeInfo.Parse(contentInfo).Enveloped;
        return WithContentKey(ed, key, cek => ContentCipher.DecryptPooled(ed, cek));
    }

    internal static byte[] DecryptOrdinary(EnvelopedDataAsn ed, ListKey me) =>
        WithContentKey(ed, me, cek => ContentCipher.Decrypt(ed, cek));

    private static T WithContentKey<T>(EnvelopedDataAsn ed, ListKey me, Func<byte[], T> decrypt)
    {
        foreach (RecipientInfoAsn ri in ed.RecipientInfos)
        {
            if (me.IsAddressedBy(ri))
            {
                int cekLength = ContentCiphers.KeyLengthOrThrow(ed);

                byte[] cek = ContentKeyRecovery.Recover(ri, me, cekLength);
                try
                {
                    return decrypt(cek);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(cek);
                }
            }
        }

        throw new CmsRewrapException(CmsRewrapFailure.NotForThisList,
            $"the message has no RecipientInfo for certificate {me.Sha256Fingerprint}");
    }
}
