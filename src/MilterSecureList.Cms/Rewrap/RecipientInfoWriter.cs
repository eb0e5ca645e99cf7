using System.Formats.Asn1;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;

namespace MilterSecureList.Cms.Rewrap;

/// <summary>Writes one member's RecipientInfo (DER) for a given content key.</summary>
internal static class RecipientInfoWriter
{
    // AlgorithmIdentifier { rsaEncryption, NULL } (RFC 3370 §4.2.1: parameters MUST be NULL)
    private static readonly byte[] s_rsaEncryption = Convert.FromHexString("300D06092A864886F70D0101010500");

    // AlgorithmIdentifier { id-aes256-wrap } with parameters absent (RFC 3565 §2.3.2)
    private static readonly byte[] s_aes256Wrap = Convert.FromHexString("300B060960864801650304012D");

    // ECC-CMS-SharedInfo for id-aes256-wrap, no ukm, 256-bit KEK (RFC 5753 §7.2)
    private static readonly byte[] s_sharedInfoAes256 = ContentKeyRecovery.EncodeSharedInfo(s_aes256Wrap, null, 32);

    /// <summary>Encode the RecipientInfo wrapping <paramref name="cek"/> for <paramref name="member"/>.</summary>
    public static byte[] Write(CmsRecipient member, ReadOnlySpan<byte> cek)
    {
        return member.KeyTransport switch
        {
            CmsKeyTransport.RsaPkcs1 or CmsKeyTransport.RsaOaepSha256 => WriteKeyTrans(member, cek),
            CmsKeyTransport.EcdhStdSha256Aes256Wrap => WriteKeyAgree(member, cek),
            _ => throw new InvalidOperationException("unknown key transport"),
        };
    }

    // KeyTransRecipientInfo, version 0, rid = issuerAndSerialNumber (RFC 5652 §6.2.1):
    //   30 L { 02 01 00 | issuerAndSerialNumber | keyEncryptionAlgorithm | 04 k encryptedKey }
    // Everything before the encryptedKey octets depends only on the member (an RSA ciphertext is always k =
    // modulus bytes long), so it is encoded once per member (KeyTransPrefix) and each message costs one RSA
    // operation written straight into the output array: no AsnWriter, no array per member, no extra copy.
    internal static byte[] EncodeKeyTransPrefix(ReadOnlySpan<byte> issuerAndSerialNumber, bool oaep, int modulusBytes, out int ridOffset)
    {
        byte[] alg = oaep ? s_oaepSha256 : s_rsaEncryption;
        long content = 3 + issuerAndSerialNumber.Length + alg.Length + DerHeader.TlvSize(modulusBytes);
        int prefixLength = (int)(DerHeader.TlvSize(content) - modulusBytes);
        byte[] prefix = new byte[prefixLength];
        int p = DerHeader.Write(prefix, 0x30, content);
        prefix[p++] = 0x02;
        prefix[p++] = 0x01;
        prefix[p++] = 0x00;
        ridOffset = p;
        issuerAndSerialNumber.CopyTo(prefix.AsSpan(p));
        p += issuerAndSerialNumber.Length;
        alg.CopyTo(prefix, p);
        p += alg.Length;
        p += DerHeader.Write(prefix.AsSpan(p), 0x04, modulusBytes);
        if (p != prefixLength)
        {
            throw new InvalidOperationException("internal error: ktri prefix size");
        }

        return prefix;
    }

    private static readonly byte[] s_oaepSha256 = EncodeOaepAlgorithmIdentifier();

    private static byte[] EncodeOaepAlgorithmIdentifier()
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(Oids.RsaesOaep);
            w.WriteEncodedValue(RsaesOaepParamsAsn.Sha256Encoded);
        }

        return w.Encode();
    }

    /// <summary>The length of <paramref name="member"/>'s KeyTransRecipientInfo (RSA members).</summary>
    public static int KeyTransLength(CmsRecipient member) => member.KeyTransPrefix!.Length + member.KeySizeBytes;

    /// <summary>Writes <paramref name="member"/>'s KeyTransRecipientInfo up to its encryptedKey octets: public data, the
    /// same for every message, which the engine writes while the content key is still being recovered.</summary>
    public static void WriteKeyTransPrefix(CmsRecipient member, Span<byte> recipientInfo) => member.KeyTransPrefix.CopyTo(recipientInfo);

    /// <summary>Fills the encryptedKey octets of <paramref name="member"/>'s KeyTransRecipientInfo (<see cref="KeyTransLength"/>
    /// bytes, prefix written or not) with <paramref name="key"/> encrypted under the member's RSA key.</summary>
    /// <remarks>
    /// With <paramref name="cacheKeyObject"/> false the key object is made for this wrap and not kept (a list larger
    /// than the key-object cache).</remarks>
    public static void WriteEncryptedKey(CmsRecipient member, ReadOnlySpan<byte> key, Span<byte> recipientInfo, bool cacheKeyObject = true)
    {
        Span<byte> encryptedKey = recipientInfo.Slice(member.KeyTransPrefix!.Length, member.KeySizeBytes);
        bool oaep = member.KeyTransport == CmsKeyTransport.RsaOaepSha256;
        if (!cacheKeyObject)
        {
            using RsaPublicKeyObject once = member.ImportRsa();
            once.Encrypt(key, encryptedKey, oaep);
            return;
        }

        using PublicKeyObjectCache.Lease lease = member.RentRsa();
        ((RsaPublicKeyObject)lease.Key).Encrypt(key, encryptedKey, oaep);
    }

    private static byte[] WriteKeyTrans(CmsRecipient member, ReadOnlySpan<byte> cek)
    {
        byte[] ri = new byte[KeyTransLength(member)];
        WriteKeyTransPrefix(member, ri);
        WriteEncryptedKey(member, cek, ri);
        return ri;
    }

    // KeyAgreeRecipientInfo (RFC 5652 §6.2.2; RFC 5753 §3.1.1 ephemeral-static ECDH):
    // a fresh ephemeral key on the member's curve, dhSinglePass-stdDH-sha256kdf-scheme, id-aes256-wrap.
    private static byte[] WriteKeyAgree(CmsRecipient member, ReadOnlySpan<byte> cek) =>
        WriteSharedKeyAgree([member], cek.ToArray(), maxDegreeOfParallelism: 1, parallelThreshold: int.MaxValue);

    /// <summary>One KeyAgreeRecipientInfo for all <paramref name="members"/> (EC, one curve) under one ephemeral key:
    /// RFC 5652 §6.2.2 lets a kari carry a RecipientEncryptedKey per recipient, and RFC 5753 §3.1.1 derives each
    /// recipient's KEK from the shared secret with that recipient's static key, so one key generation serves them all.</summary>
    public static byte[] WriteSharedKeyAgree(IReadOnlyList<CmsRecipient> members, byte[] cek, int maxDegreeOfParallelism, int parallelThreshold)
    {
        if (KeyWrap.WrappedLength(Oids.Aes256Wrap, cek.Length) == 0)
        {
            // RFC 3394 wraps keys of two or more 64-bit blocks: DES (8 bytes) and 40-bit RC2 (5) content keys cannot
            // be carried in a key agreement that every reader understands.
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm,
                $"a {cek.Length}-byte content key cannot be wrapped for the EC member {members[0].Subject} (AES key wrap needs 16 bytes or more)");
        }

        using ECDiffieHellman ephemeral = ECDiffieHellman.Create(members[0].Curve);
        var encryptedKeys = new byte[members.Count][];
        if (members.Count >= parallelThreshold)
        {
            // Each worker derives with its own copy of the ephemeral key: one key object is not promised to be
            // safe for concurrent use.
            ECParameters priv = ephemeral.ExportParameters(true);
            try
            {
                Parallel.For(0, members.Count, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism },
                    () => ECDiffieHellman.Create(priv),
                    (i, _, mine) =>
                    {
                        encryptedKeys[i] = WrapForMember(mine, members[i], cek);
                        return mine;
                    },
                    mine => mine.Dispose());
            }
            finally
            {
                CryptographicOperations.ZeroMemory(priv.D);
            }
        }
        else
        {
            for (int i = 0; i < members.Count; i++)
            {
                encryptedKeys[i] = WrapForMember(ephemeral, members[i], cek);
            }
        }

        ECParameters eph = ephemeral.ExportParameters(false);
        int coord = members[0].KeySizeBytes;
        byte[] point = new byte[1 + (2 * coord)];
        point[0] = 0x04;
        eph.Q.X.AsSpan().CopyTo(point.AsSpan(1 + coord - eph.Q.X!.Length));
        eph.Q.Y.AsSpan().CopyTo(point.AsSpan(1 + (2 * coord) - eph.Q.Y!.Length));

        int estimate = 128 + point.Length + members.Sum(m => m.EncodedIssuerAndSerialNumber.Length + cek.Length + 16);
        var w = new AsnWriter(AsnEncodingRules.DER, estimate);
        using (w.PushSequence(AsnTags.Constructed1))
        {
            w.WriteInteger(3);
            using (w.PushSequence(AsnTags.Constructed0))
            using (w.PushSequence(AsnTags.Constructed1))
            {
                // OriginatorPublicKey: id-ecPublicKey with parameters absent (the curve is the recipients'; RFC 5753 §3.1.1).
                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(Oids.EcPublicKey);
                }

                w.WriteBitString(point);
            }

            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(Oids.DhSinglePassStdDhSha256Kdf);
                w.WriteEncodedValue(s_aes256Wrap);
            }

            using (w.PushSequence())
            {
                for (int i = 0; i < members.Count; i++)
                {
                    using (w.PushSequence())
                    {
                        w.WriteEncodedValue(members[i].EncodedIssuerAndSerialNumber.Span);
                        w.WriteOctetString(encryptedKeys[i]);
                    }
                }
            }
        }

        return w.Encode();
    }

    private static byte[] WrapForMember(ECDiffieHellman ephemeral, CmsRecipient member, byte[] cek)
    {
        byte[] z;
        using (PublicKeyObjectCache.Lease key = member.RentEc())
        {
            z = ephemeral.DeriveRawSecretAgreement(((CmsRecipient.EcPublicKeyObject)key.Key).PublicKey);
        }

        Span<byte> kek = stackalloc byte[32];
        try
        {
            X963Kdf.DeriveKey(Oids.Sha256, z, s_sharedInfoAes256, kek);
            return KeyWrap.WrapAes(kek, cek);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(z);
            CryptographicOperations.ZeroMemory(kek);
        }
    }
}
