using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;

namespace MilterSecureList.Cms.Primitives;

// The primitives .NET 10 does not have, taken from BouncyCastle.Cryptography (docs/design.md, "Which library does
// what"). BouncyCastle keeps key bytes in managed arrays it never clears (KeyParameter, the AES key schedule); only
// single-use key-encryption keys pass through here, never the list's private key.

/// <summary>Hash functions by OID, including SHA-224 (which .NET lacks but RFC 5753 and RFC 4055 name).</summary>
internal static class Digests
{
    public static IDigest Create(string oid) => oid switch
    {
        Oids.Sha1 => new Sha1Digest(),
        Oids.Sha224 => new Sha224Digest(),
        Oids.Sha256 => new Sha256Digest(),
        Oids.Sha384 => new Sha384Digest(),
        Oids.Sha512 => new Sha512Digest(),
        _ => throw new ArgumentException($"hash {oid} is not allowed", nameof(oid)),
    };
}

/// <summary>ANSI X9.63 key derivation as CMS ECDH uses it (RFC 5753 §7.2; SEC 1 §3.6.1):
/// K = Hash(Z || Counter32 || SharedInfo) for Counter = 1, 2, ..., truncated. BouncyCastle's KDF2 generator is the same
/// construction (ISO 18033-2 KDF2 counts from 1).</summary>
internal static class X963Kdf
{
    public static void DeriveKey(string hashOid, ReadOnlySpan<byte> z, byte[] sharedInfo, Span<byte> destination)
    {
        byte[] secret = z.ToArray();
        try
        {
            var kdf = new Kdf2BytesGenerator(Digests.Create(hashOid));
            kdf.Init(new KdfParameters(secret, sharedInfo));
            kdf.GenerateBytes(destination);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>The KDF hash of a dhSinglePass-* scheme OID (RFC 5753 §7.1.4); false if not allowed.</summary>
    public static bool TryGetScheme(string oid, out string hashOid)
    {
        hashOid = oid switch
        {
            Oids.DhSinglePassStdDhSha1Kdf or Oids.DhSinglePassCofactorDhSha1Kdf => Oids.Sha1,
            Oids.DhSinglePassStdDhSha224Kdf or Oids.DhSinglePassCofactorDhSha224Kdf => Oids.Sha224,
            Oids.DhSinglePassStdDhSha256Kdf or Oids.DhSinglePassCofactorDhSha256Kdf => Oids.Sha256,
            Oids.DhSinglePassStdDhSha384Kdf or Oids.DhSinglePassCofactorDhSha384Kdf => Oids.Sha384,
            Oids.DhSinglePassStdDhSha512Kdf or Oids.DhSinglePassCofactorDhSha512Kdf => Oids.Sha512,
            _ => "",
        };
        // P-256/384/521 have cofactor 1, so cofactorDH and stdDH give the same Z (RFC 5753 §3.1.1).
        return hashOid.Length != 0;
    }
}

/// <summary>The key-wrap algorithms of CMS key agreement: RFC 3394 AES key wrap (id-aes*-wrap, RFC 3565) and the
/// Triple-DES key wrap id-alg-CMS3DESwrap (RFC 3217, RFC 3370 §4.3.1), which OpenSSL 1.1.1 and 3.0 write whenever the
/// content cipher is 3DES. .NET 10 ships only the padded RFC 5649 variant.</summary>
internal static class KeyWrap
{
    /// <summary>KEK length in bytes for an allowed key-wrap OID, or 0.</summary>
    public static int KekLength(string wrapOid) => wrapOid switch
    {
        Oids.Aes128Wrap => 16,
        Oids.Aes192Wrap => 24,
        Oids.Aes256Wrap => 32,
        Oids.Cms3DesWrap => 24,
        _ => 0,
    };

    /// <summary>Length of the wrapped form of a key of <paramref name="keyLength"/> bytes, or 0 when the algorithm
    /// cannot wrap a key of that length (RFC 3394: multiples of 8, at least 16; RFC 3217: a 24-byte 3DES key only).</summary>
    public static int WrappedLength(string wrapOid, int keyLength) => wrapOid switch
    {
        Oids.Cms3DesWrap => keyLength == 24 ? 40 : 0,
        _ => keyLength >= 16 && keyLength % 8 == 0 ? keyLength + 8 : 0,
    };

    /// <summary>RFC 3394 wrap of <paramref name="key"/> under the AES key <paramref name="kek"/>.</summary>
    public static byte[] WrapAes(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> key)
    {
        var engine = new Rfc3394WrapEngine(AesUtilities.CreateEngine());
        engine.Init(true, new KeyParameter(kek));
        byte[] input = key.ToArray();
        try
        {
            return engine.Wrap(input, 0, input.Length);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(input);
        }
    }

    /// <summary>Unwrap into <paramref name="destination"/> (exactly the unwrapped length). False when the integrity
    /// check fails (wrong KEK or altered data); the destination is then zeroed.</summary>
    public static bool TryUnwrap(string wrapOid, ReadOnlySpan<byte> kek, ReadOnlySpan<byte> wrapped, Span<byte> destination)
    {
        if (WrappedLength(wrapOid, destination.Length) != wrapped.Length)
        {
            destination.Clear();
            return false;
        }

        IWrapper engine = wrapOid == Oids.Cms3DesWrap ? new DesEdeWrapEngine() : new Rfc3394WrapEngine(AesUtilities.CreateEngine());
        engine.Init(false, new KeyParameter(kek));
        byte[] input = wrapped.ToArray();
        byte[]? plain = null;
        try
        {
            plain = engine.Unwrap(input, 0, input.Length);
            if (plain.Length != destination.Length)
            {
                destination.Clear();
                return false;
            }

            plain.CopyTo(destination);
            return true;
        }
        catch (InvalidCipherTextException)
        {
            destination.Clear();
            return false;
        }
        finally
        {
            if (plain is not null)
            {
                CryptographicOperations.ZeroMemory(plain);
            }
        }
    }
}
