using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Cms.Asn1;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Encodings;

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

    /// <summary>RSAES-OAEP decoding (RFC 8017 §7.1.2 step 3) with any hash, MGF1 hash and label. BouncyCastle's
    /// OaepEncoding checks the padding; its exception on failure is folded into the same synthetic-key selection.</summary>
    public static void DecodeOaep(ReadOnlySpan<byte> em, ReadOnlySpan<byte> kdk, RsaesOaepParamsAsn parameters, Span<byte> key)
    {
        int k = em.Length;
        byte[] block = GC.AllocateArray<byte>(k - 1, pinned: true);
        em[1..].CopyTo(block);
        var oaep = new OaepEncoding(new EncodedMessage(block, k), Digests.Create(parameters.HashAlgorithm),
            Digests.Create(parameters.MaskGenHashAlgorithm), parameters.Label);
        oaep.Init(false, null);
        byte[] candidate = GC.AllocateArray<byte>(key.Length, pinned: true);
        int good;
        byte[]? decoded = null;
        try
        {
            try
            {
                // The input only sizes the block; EncodedMessage hands back EM without its leading octet.
                decoded = oaep.ProcessBlock(new byte[k], 0, k);
                good = LengthMask(decoded.Length, key.Length);
                decoded.AsSpan(0, Math.Min(decoded.Length, key.Length)).CopyTo(candidate);
            }
            catch (InvalidCipherTextException)
            {
                good = 0;
            }

            // RFC 8017 §7.1.2 step 3g: the leading octet Y must be zero; checked here, without a branch.
            good &= IsZero(em[0]);
            SelectOrSynthetic(candidate, good, kdk, k, key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(block);
            CryptographicOperations.ZeroMemory(candidate);
            if (decoded is not null)
            {
                CryptographicOperations.ZeroMemory(decoded);
            }
        }
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

    private static int LengthMask(int actual, int expected) => IsZero(actual ^ expected);

    /// <summary>The RSA "engine" OaepEncoding decodes from: EM computed beforehand by OpenSSL, without its leading
    /// octet (BouncyCastle's own engines return the integer's k-1 low-order octets the same way).</summary>
    private sealed class EncodedMessage(byte[] block, int modulusLength) : IAsymmetricBlockCipher
    {
        public string AlgorithmName => "RSA";

        public void Init(bool forEncryption, ICipherParameters parameters)
        {
            if (forEncryption)
            {
                throw new NotSupportedException("decoding only");
            }
        }

        public int GetInputBlockSize() => modulusLength;

        public int GetOutputBlockSize() => modulusLength - 1;

        public byte[] ProcessBlock(byte[] inBuf, int inOff, int inLen) => block;
    }
}
