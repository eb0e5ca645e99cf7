using System.Formats.Asn1;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms.Primitives;

/// <summary>Content encryption and decryption for the member and sender tools (never used by the re-key milter,
/// which does not touch the content).</summary>
internal static class ContentCipher
{
    /// <summary>Decrypt the (auth)encrypted content with <paramref name="cek"/>. Throws DecryptionFailed on a wrong key or tampering.</summary>
    public static byte[] Decrypt(EnvelopedDataAsn ed, ReadOnlySpan<byte> cek)
    {
        AlgorithmIdentifierAsn alg = ed.EncryptedContentInfo.ContentEncryptionAlgorithm;
        byte[] ciphertext = DecoderBoundary.Decode(ed.EncryptedContentInfo, static eci => eci.ReadEncryptedContent(),
            "malformed encrypted content");

        try
        {
            switch (alg.Algorithm)
            {
                case Oids.Aes128Cbc or Oids.Aes192Cbc or Oids.Aes256Cbc when !ed.IsAuthEnveloped:
                {
                    using Aes aes = SymmetricKeys.CreateAes(cek);
                    return aes.DecryptCbc(ciphertext, ReadParameters(alg, static a => ReadIv(a, 16)), PaddingMode.PKCS7);
                }

                case Oids.DesEde3Cbc when !ed.IsAuthEnveloped:
                {
#pragma warning disable CA5350 // 3DES is openssl's default content cipher; members must still read such mail.
                    using TripleDES des = TripleDES.Create();
#pragma warning restore CA5350
                    SymmetricKeys.SetKey(des, cek);
                    return des.DecryptCbc(ciphertext, ReadParameters(alg, static a => ReadIv(a, 8)), PaddingMode.PKCS7);
                }

                case Oids.Aes128Gcm or Oids.Aes192Gcm or Oids.Aes256Gcm when ed.IsAuthEnveloped:
                {
                    (byte[] nonce, int tagLength) = ReadParameters(alg, ReadGcmParameters);
                    if (nonce.Length != 12)
                    {
                        // RFC 5084 §3.2 recommends 12 octets; .NET's AesGcm supports only that size.
                        throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, "GCM nonces other than 12 bytes are not supported");
                    }

                    if (ed.Mac.Length != tagLength)
                    {
                        throw new CmsRewrapException(CmsRewrapFailure.Malformed, "GCM tag length does not match aes-ICVlen");
                    }

                    byte[] plain = new byte[ciphertext.Length];
                    using var gcm = new AesGcm(cek, tagLength);
                    gcm.Decrypt(nonce, ciphertext, ed.Mac.Span, plain, AuthenticatedAttributesAad(ed));
                    return plain;
                }

                default:
                    throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm,
                        $"content encryption algorithm {alg.Algorithm} is not supported for decryption");
            }
        }
        catch (CryptographicException e)
        {
            throw new CmsRewrapException(CmsRewrapFailure.DecryptionFailed,
                "the content does not decrypt (wrong key or the message was altered)", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ciphertext);
        }
    }

    /// <summary>The same into a pooled buffer. AES-CBC decrypts straight from the encrypted content's place in the
    /// message when it is one primitive OCTET STRING (as every sender writes it); other content takes
    /// <see cref="Decrypt"/> and is copied over.</summary>
    public static PooledPlaintext DecryptPooled(EnvelopedDataAsn ed, ReadOnlySpan<byte> cek)
    {
        AlgorithmIdentifierAsn alg = ed.EncryptedContentInfo.ContentEncryptionAlgorithm;
        if (alg.Algorithm is Oids.Aes128Cbc or Oids.Aes192Cbc or Oids.Aes256Cbc && !ed.IsAuthEnveloped
            && ed.EncryptedContentInfo.EncryptedContentEncoded is { } tlv
            && new AsnReader(tlv, AsnEncodingRules.BER) is var reader
            && reader.TryReadPrimitiveOctetString(out ReadOnlyMemory<byte> ciphertext, AsnTags.Context0) && !reader.HasData)
        {
            byte[] iv = ReadParameters(alg, static a => ReadIv(a, 16));
            byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(ciphertext.Length, 1));
            try
            {
                using Aes aes = SymmetricKeys.CreateAes(cek);
                int written = aes.DecryptCbc(ciphertext.Span, iv, buffer.AsSpan(0, ciphertext.Length), PaddingMode.PKCS7);
                return new PooledPlaintext(buffer, written);
            }
            catch (CryptographicException e)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
                throw new CmsRewrapException(CmsRewrapFailure.DecryptionFailed,
                    "the content does not decrypt (wrong key or the message was altered)", e);
            }
        }

        byte[] plain = Decrypt(ed, cek);
        try
        {
            return PooledPlaintext.CopyOf(plain);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plain);
        }
    }

    // RFC 5083 §2.2: the MAC covers the DER encoding of authAttrs with the EXPLICIT SET OF tag (0x31), not [1].
    private static byte[] AuthenticatedAttributesAad(EnvelopedDataAsn ed)
    {
        if (ed.AuthAttributes is not { } attrs)
        {
            return [];
        }

        byte[] aad = attrs.ToArray();
        aad[0] = 0x31;
        return aad;
    }

    private static T ReadParameters<T>(AlgorithmIdentifierAsn alg, Func<AlgorithmIdentifierAsn, T> read) =>
        DecoderBoundary.Decode(alg, read, "malformed content-encryption parameters");

    private static byte[] ReadIv(AlgorithmIdentifierAsn alg, int length)
    {
        if (alg.Parameters is not { } p)
        {
            throw new AsnContentException("missing IV");
        }

        var r = new AsnReader(p, AsnEncodingRules.BER);
        byte[] iv = r.ReadOctetString();
        r.ThrowIfNotEmpty();
        if (iv.Length != length)
        {
            throw new AsnContentException("IV has the wrong length");
        }

        return iv;
    }

    // RFC 5084 §3.2: GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen AES-GCM-ICVlen DEFAULT 12 }
    private static (byte[] Nonce, int TagLength) ReadGcmParameters(AlgorithmIdentifierAsn alg)
    {
        if (alg.Parameters is not { } p)
        {
            throw new AsnContentException("missing GCMParameters");
        }

        var outer = new AsnReader(p, AsnEncodingRules.BER);
        AsnReader seq = outer.ReadSequence();
        outer.ThrowIfNotEmpty();
        byte[] nonce = seq.ReadOctetString();
        int tag = 12;
        if (seq.HasData && (!seq.TryReadInt32(out tag) || tag < 12 || tag > 16))
        {
            throw new AsnContentException("aes-ICVlen is not 12..16");
        }

        seq.ThrowIfNotEmpty();
        return (nonce, tag);
    }

    /// <summary>Encrypt for the sender tool: AES-256-GCM (nonce 12, tag 16; RFC 5084) or AES-256-CBC.
    /// Returns the EncryptedContentInfo DER and, for GCM, the tag.</summary>
    public static (byte[] EncryptedContentInfo, byte[]? Mac) Encrypt(ReadOnlySpan<byte> plain, ReadOnlySpan<byte> cek, bool useGcm)
    {
        byte[] ciphertext;
        byte[]? mac = null;
        var alg = new AsnWriter(AsnEncodingRules.DER);
        using (alg.PushSequence())
        {
            if (useGcm)
            {
                byte[] nonce = RandomNumberGenerator.GetBytes(12);
                mac = new byte[16];
                ciphertext = new byte[plain.Length];
                using var gcm = new AesGcm(cek, 16);
                gcm.Encrypt(nonce, plain, ciphertext, mac);
                alg.WriteObjectIdentifier(Oids.Aes256Gcm);
                using (alg.PushSequence())
                {
                    alg.WriteOctetString(nonce);
                    alg.WriteInteger(16);
                }
            }
            else
            {
                byte[] iv = RandomNumberGenerator.GetBytes(16);
                using Aes aes = SymmetricKeys.CreateAes(cek);
                ciphertext = aes.EncryptCbc(plain, iv, PaddingMode.PKCS7);
                alg.WriteObjectIdentifier(Oids.Aes256Cbc);
                alg.WriteOctetString(iv);
            }
        }

        var w = new AsnWriter(AsnEncodingRules.DER, ciphertext.Length + 128);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(Oids.Data);
            w.WriteEncodedValue(alg.Encode());
            w.WriteOctetString(ciphertext, AsnTags.Context0);
        }

        return (w.Encode(), mac);
    }
}
