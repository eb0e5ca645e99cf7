using System.Security.Cryptography;

namespace MilterSecureList.Cms.Primitives;

/// <summary>Creates cipher objects from key spans without leaving an unzeroed managed copy of the key behind.</summary>
internal static class SymmetricKeys
{
    public static Aes CreateAes(ReadOnlySpan<byte> key)
    {
        Aes aes = Aes.Create();
        SetKey(aes, key);
        return aes;
    }

    public static void SetKey(SymmetricAlgorithm algorithm, ReadOnlySpan<byte> key)
    {
        // SymmetricAlgorithm.Key copies the array it is given; clear our temporary copy.
        byte[] copy = key.ToArray();
        try
        {
            algorithm.Key = copy;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(copy);
        }
    }
}
