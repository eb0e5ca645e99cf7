using System.Security.Cryptography;
using System.Text;

namespace MilterSecureList.Cms.KeyRelease;

/// <summary>The policy binding (docs/key-release.md §3): an HMAC keyed from the key material over the policy and the
/// message id, so that nobody without the key material can change a post's policy unnoticed.</summary>
public static class ReleaseBinding
{
    private static readonly byte[] s_label = Encoding.ASCII.GetBytes("MilterSecureList key release binding v0");

    /// <summary>binding = HMAC-SHA256(HMAC-SHA256(keyMaterial, label), DER(policy) || messageId).</summary>
    public static byte[] Compute(ReadOnlySpan<byte> keyMaterial, ReadOnlySpan<byte> policyDer, ReadOnlySpan<byte> messageId)
    {
        Span<byte> bindingKey = stackalloc byte[32];
        try
        {
            // A derived key: the content key is an AES key and is not used directly as an HMAC key as well.
            HMACSHA256.HashData(keyMaterial, s_label, bindingKey);
            using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, bindingKey);
            hmac.AppendData(policyDer);
            hmac.AppendData(messageId);
            return hmac.GetHashAndReset();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bindingKey);
        }
    }

    /// <summary>Constant-time comparison of the computed binding with <paramref name="expected"/>.</summary>
    public static bool Verify(ReadOnlySpan<byte> keyMaterial, ReadOnlySpan<byte> policyDer, ReadOnlySpan<byte> messageId, ReadOnlySpan<byte> expected)
    {
        byte[] actual = Compute(keyMaterial, policyDer, messageId);
        return expected.Length == actual.Length && CryptographicOperations.FixedTimeEquals(actual, expected);
    }
}
