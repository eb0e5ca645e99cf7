using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Cms.Asn1;
using Org.BouncyCastle.Crypto;

namespace MilterSecureList.Cms.Primitives;

/// <summary>Turns the output of RSADP (the encoded message EM, k bytes) into a content key of a known length, without
/// a padding oracle: the result is either the key the sender wrapped or a synthetic key, and which one is never
/// visible in timing, exceptions or output shape (docs/design.md, "No padding oracle").</summary>
/// <remarks>
/// Implicit rejection as in OpenSSL 3.2 and the IRTF CFRG RSA implementation guidance: a key-derivation key
/// KDK = HMAC-SHA256(SHA-256(d), C) (<see cref="RsaDecryptionPrimitive.DeriveRejectionKey"/>) and a synthetic message
/// PRF(KDK, "message", 8k) stand in for the plaintext whenever the padding does not hold a key of the expected length.
/// The synthetic key is deterministic (the same ciphertext always gives the same key, so a member who sends a
/// ciphertext twice learns nothing from comparing the results) and differs from ciphertext to ciphertext. Because the
/// key length is known beforehand, the message always sits at the same offset (k - length), so no memory access
/// depends on secret data; OpenSSL's variable-length output and its synthetic length are not needed.
/// </remarks>
internal static class KeyTransportDecoder
{
    private static readonly byte[] s_messageLabel = Encoding.ASCII.GetBytes("message");

    /// <summary>RSAES-PKCS1-v1_5 decoding (RFC 8017 §7.2.2 step 3) for a key of exactly <paramref name="key"/>.Length
    /// bytes: EM = 0x00 || 0x02 || PS (k - len - 3 non-zero octets, at least 8) || 0x00 || key.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    public static void DecodePkcs1(ReadOnlySpan<byte> em, ReadOnlySpan<byte> kdk, Span<byte> key)
    {
        int k = em.Length;
        int separator = k - key.Length - 1;
        if (separator < 10)
        {
            // Public facts (modulus and content-cipher key length): a key this long never fits PKCS#1 v1.5.
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"a {key.Length}-byte content key does not fit PKCS#1 v1.5 under a {k * 8}-bit RSA key");
        }

        // All-ones when the padding holds a key of exactly the expected length, else zero; no branch on em.
        int good = IsZero(em[0]) & IsZero(em[1] ^ 0x02) & IsZero(em[separator]);
        for (int i = 2; i < separator; i++)
        {
            good &= ~IsZero(em[i]);
        }

        SelectOrSynthetic(em[(k - key.Length)..], good, kdk, k, key);
    }

    /// <summary>RSAES-OAEP decoding (RFC 8017 §7.1.2 step 3) with any allowed hash, MGF1 hash and label, for a key of
    /// exactly <paramref name="key"/>.Length bytes: EM = Y || maskedSeed || maskedDB, DB = lHash' || PS (zero octets)
    /// || 0x01 || key. Because the key length is known, the 0x01 separator has one fixed place, so every check is a
    /// comparison at a public offset folded into one mask, as in <see cref="DecodePkcs1"/>: no branch, exception or
    /// early exit depends on the padding (a library decoder that throws on bad padding would make its own timing
    /// oracle).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    public static void DecodeOaep(ReadOnlySpan<byte> em, ReadOnlySpan<byte> kdk, RsaesOaepParamsAsn parameters, Span<byte> key)
    {
        int k = em.Length;
        IDigest hash = Digests.Create(parameters.HashAlgorithm);
        IDigest mgfHash = Digests.Create(parameters.MaskGenHashAlgorithm);
        int h = hash.GetDigestSize();
        int dbLength = k - h - 1;
        int separator = dbLength - key.Length - 1;
        if (separator < h)
        {
            // Public facts (modulus, hash and content-cipher key length): RFC 8017 §7.1.1 step 1b.
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"a {key.Length}-byte content key does not fit RSAES-OAEP with a {h}-byte hash under a {k * 8}-bit RSA key");
        }

        byte[] seed = GC.AllocateArray<byte>(h, pinned: true);
        byte[] db = GC.AllocateArray<byte>(dbLength, pinned: true);
        byte[] lHash = new byte[h];
        try
        {
            // seed = maskedSeed XOR MGF1(maskedDB, hLen); DB = maskedDB XOR MGF1(seed, k - hLen - 1).
            Mgf1Xor(mgfHash, em[(1 + h)..], em.Slice(1, h), seed);
            Mgf1Xor(mgfHash, seed, em[(1 + h)..], db);

            hash.BlockUpdate(parameters.Label, 0, parameters.Label.Length);
            hash.DoFinal(lHash, 0);

            int difference = em[0];
            for (int i = 0; i < h; i++)
            {
                difference |= db[i] ^ lHash[i];
            }

            for (int i = h; i < separator; i++)
            {
                difference |= db[i];
            }

            difference |= db[separator] ^ 0x01;
            SelectOrSynthetic(db.AsSpan(separator + 1), IsZero(difference), kdk, k, key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            CryptographicOperations.ZeroMemory(db);
        }
    }

    /// <summary>destination = masked XOR MGF1(mgfSeed, masked.Length) (RFC 8017 Appendix B.2.1): Hash(mgfSeed ||
    /// C) for a 32-bit big-endian counter C = 0, 1, ..., the mask truncated to the length needed.</summary>
    private static void Mgf1Xor(IDigest digest, ReadOnlySpan<byte> mgfSeed, ReadOnlySpan<byte> masked, Span<byte> destination)
    {
        int h = digest.GetDigestSize();
        Span<byte> counter = stackalloc byte[4];
        Span<byte> block = stackalloc byte[64];
        block = block[..h];
        for (int done = 0, c = 0; done < masked.Length; done += h, c++)
        {
            BinaryPrimitives.WriteInt32BigEndian(counter, c);
            digest.BlockUpdate(mgfSeed);
            digest.BlockUpdate(counter);
            digest.DoFinal(block);
            int n = Math.Min(h, masked.Length - done);
            for (int i = 0; i < n; i++)
            {
                destination[done + i] = (byte)(masked[done + i] ^ block[i]);
            }
        }

        CryptographicOperations.ZeroMemory(block);
    }

    /// <summary>The last <paramref name="key"/>.Length octets of PRF(KDK, "message", 8k): the synthetic key.</summary>
    public static void SyntheticKey(ReadOnlySpan<byte> kdk, int modulusLength, Span<byte> key)
    {
        byte[] synthetic = GC.AllocateArray<byte>(modulusLength, pinned: true);
        try
        {
            Prf(kdk, s_messageLabel, synthetic);
            synthetic.AsSpan(modulusLength - key.Length).CopyTo(key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(synthetic);
        }
    }

    /// <summary>PRF(key, label, L) = the first L bits of HMAC-SHA256(key, I || label || L) for I = 0, 1, ...
    /// (I and L as 16-bit big-endian integers), the pseudo-random function of OpenSSL's implicit rejection.</summary>
    internal static void Prf(ReadOnlySpan<byte> kdk, ReadOnlySpan<byte> label, Span<byte> output)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, kdk);
        Span<byte> block = stackalloc byte[32];
        Span<byte> counter = stackalloc byte[2];
        Span<byte> bits = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(bits, (ushort)(output.Length * 8));
        for (int i = 0, done = 0; done < output.Length; i++, done += block.Length)
        {
            BinaryPrimitives.WriteUInt16BigEndian(counter, (ushort)i);
            hmac.AppendData(counter);
            hmac.AppendData(label);
            hmac.AppendData(bits);
            hmac.GetHashAndReset(block);
            block[..Math.Min(block.Length, output.Length - done)].CopyTo(output[done..]);
        }

        CryptographicOperations.ZeroMemory(block);
    }

    /// <summary>key = good ? candidate : synthetic key, byte by byte through a mask.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    private static void SelectOrSynthetic(ReadOnlySpan<byte> candidate, int good, ReadOnlySpan<byte> kdk, int modulusLength, Span<byte> key)
    {
        byte[] synthetic = GC.AllocateArray<byte>(key.Length, pinned: true);
        try
        {
            SyntheticKey(kdk, modulusLength, synthetic);
            byte mask = (byte)good;
            for (int i = 0; i < key.Length; i++)
            {
                key[i] = (byte)((candidate[i] & mask) | (synthetic[i] & ~mask));
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(synthetic);
        }
    }

    /// <summary>All-ones when <paramref name="value"/> (0..255 or any int) is zero, else zero, without a branch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int IsZero(int value) => (int)(((uint)value | (uint)-value) >> 31) - 1;
}
