using System.Buffers.Binary;
using System.Security.Cryptography;

namespace MilterSecureList.Cms;

/// <summary>RFC 3394 AES key wrap (unpadded), built on <see cref="Aes.EncryptEcb(ReadOnlySpan{byte}, Span{byte}, PaddingMode)"/>:
/// .NET 10 only ships the padded RFC 5649 variant, but CMS kari/kekri use id-aes*-wrap (RFC 3565 / RFC 5753).</summary>
public static class AesKeyWrap
{
    private const ulong DefaultIv = 0xA6A6A6A6A6A6A6A6; // RFC 3394 §2.2.3.1

    /// <summary>Wrap <paramref name="key"/> (a multiple of 8 bytes, at least 16) under <paramref name="kek"/>; returns key.Length + 8 bytes.</summary>
    public static byte[] Wrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> key)
    {
        if (key.Length < 16 || key.Length % 8 != 0)
        {
            throw new ArgumentException("RFC 3394 needs a key of at least 16 bytes in 8-byte blocks", nameof(key));
        }

        using Aes aes = SymmetricKeys.CreateAes(kek);
        int n = key.Length / 8;
        byte[] r = new byte[8 + key.Length];
        key.CopyTo(r.AsSpan(8));
        ulong a = DefaultIv;
        Span<byte> b = stackalloc byte[16];
        try
        {
            // RFC 3394 §2.2.1, index-based form.
            for (int j = 0; j <= 5; j++)
            {
                for (int i = 1; i <= n; i++)
                {
                    BinaryPrimitives.WriteUInt64BigEndian(b, a);
                    r.AsSpan(8 * i, 8).CopyTo(b[8..]);
                    aes.EncryptEcb(b, b, PaddingMode.None);
                    a = BinaryPrimitives.ReadUInt64BigEndian(b) ^ (ulong)((n * j) + i);
                    b[8..].CopyTo(r.AsSpan(8 * i, 8));
                }
            }

            BinaryPrimitives.WriteUInt64BigEndian(r, a);
            return r;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(b);
        }
    }

    /// <summary>Unwrap into <paramref name="destination"/> (wrapped.Length - 8 bytes). Returns false when the integrity
    /// check fails (wrong KEK or tampered data); the destination is then zeroed.</summary>
    public static bool TryUnwrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> wrapped, Span<byte> destination)
    {
        if (wrapped.Length < 24 || wrapped.Length % 8 != 0 || destination.Length != wrapped.Length - 8)
        {
            return false;
        }

        using Aes aes = SymmetricKeys.CreateAes(kek);
        int n = (wrapped.Length / 8) - 1;
        wrapped[8..].CopyTo(destination);
        ulong a = BinaryPrimitives.ReadUInt64BigEndian(wrapped);
        Span<byte> b = stackalloc byte[16];
        // RFC 3394 §2.2.2, index-based form.
        for (int j = 5; j >= 0; j--)
        {
            for (int i = n; i >= 1; i--)
            {
                BinaryPrimitives.WriteUInt64BigEndian(b, a ^ (ulong)((n * j) + i));
                destination.Slice(8 * (i - 1), 8).CopyTo(b[8..]);
                aes.DecryptEcb(b, b, PaddingMode.None);
                a = BinaryPrimitives.ReadUInt64BigEndian(b);
                b[8..].CopyTo(destination.Slice(8 * (i - 1), 8));
            }
        }

        CryptographicOperations.ZeroMemory(b);
        Span<byte> check = stackalloc byte[8];
        Span<byte> expected = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(check, a);
        BinaryPrimitives.WriteUInt64BigEndian(expected, DefaultIv);
        if (!CryptographicOperations.FixedTimeEquals(check, expected))
        {
            CryptographicOperations.ZeroMemory(destination);
            return false;
        }

        return true;
    }

    /// <summary>KEK length in bytes for an id-aes*-wrap OID, or 0.</summary>
    internal static int KekLength(string wrapOid) => wrapOid switch
    {
        Oids.Aes128Wrap => 16,
        Oids.Aes192Wrap => 24,
        Oids.Aes256Wrap => 32,
        _ => 0,
    };
}
