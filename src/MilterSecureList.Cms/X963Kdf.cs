using System.Buffers.Binary;
using System.Security.Cryptography;

namespace MilterSecureList.Cms;

/// <summary>ANSI X9.63 key derivation as used by CMS ECDH (RFC 5753 §7.2, SEC 1 §3.6.1):
/// K = Hash(Z || Counter32 || SharedInfo) for Counter = 1, 2, ... truncated to the KEK length.</summary>
internal static class X963Kdf
{
    internal const string Sha224Name = "SHA224";

    public static void DeriveKey(HashAlgorithmName hash, ReadOnlySpan<byte> z, ReadOnlySpan<byte> sharedInfo, Span<byte> destination)
    {
        Span<byte> counter = stackalloc byte[4];
        Span<byte> block = stackalloc byte[64];
        int done = 0;
        if (hash.Name == Sha224Name)
        {
            byte[] input = new byte[z.Length + 4 + sharedInfo.Length];
            try
            {
                for (uint c = 1; done < destination.Length; c++)
                {
                    z.CopyTo(input);
                    BinaryPrimitives.WriteUInt32BigEndian(input.AsSpan(z.Length), c);
                    sharedInfo.CopyTo(input.AsSpan(z.Length + 4));
                    byte[] digest = Sha224.HashData(input);
                    int take224 = Math.Min(digest.Length, destination.Length - done);
                    digest.AsSpan(0, take224).CopyTo(destination[done..]);
                    CryptographicOperations.ZeroMemory(digest);
                    done += take224;
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(input);
            }

            return;
        }

        using IncrementalHash h = IncrementalHash.CreateHash(hash);
        for (uint c = 1; done < destination.Length; c++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(counter, c);
            h.AppendData(z);
            h.AppendData(counter);
            h.AppendData(sharedInfo);
            int len = h.GetHashAndReset(block);
            int take = Math.Min(len, destination.Length - done);
            block[..take].CopyTo(destination[done..]);
            done += take;
        }

        CryptographicOperations.ZeroMemory(block);
    }

    /// <summary>The hash and cofactor flag of a dhSinglePass-* scheme OID (RFC 5753 §7.1.4); false if not allowed.</summary>
    public static bool TryGetScheme(string oid, out HashAlgorithmName hash)
    {
        hash = oid switch
        {
            Oids.DhSinglePassStdDhSha1Kdf or Oids.DhSinglePassCofactorDhSha1Kdf => HashAlgorithmName.SHA1,
            Oids.DhSinglePassStdDhSha224Kdf or Oids.DhSinglePassCofactorDhSha224Kdf => new HashAlgorithmName(Sha224Name),
            Oids.DhSinglePassStdDhSha256Kdf or Oids.DhSinglePassCofactorDhSha256Kdf => HashAlgorithmName.SHA256,
            Oids.DhSinglePassStdDhSha384Kdf or Oids.DhSinglePassCofactorDhSha384Kdf => HashAlgorithmName.SHA384,
            Oids.DhSinglePassStdDhSha512Kdf or Oids.DhSinglePassCofactorDhSha512Kdf => HashAlgorithmName.SHA512,
            _ => default,
        };
        // P-256/384/521 have cofactor 1, so cofactorDH and stdDH give the same Z (RFC 5753 §3.1.1).
        return hash.Name is not null;
    }
}
