using System.Runtime.InteropServices;

namespace MilterSecureList.Cms.Primitives;

/// <summary>RSAES-PKCS1-v1_5 encryption (RFC 8017 §7.2.1) straight from a member's modulus and exponent bytes, with no
/// key object kept: OpenSSL's RSA_public_encrypt on an RSA structure made for this one operation.</summary>
/// <remarks>
/// Importing a public key through .NET (<c>RSA.Create</c> + <c>ImportRSAPublicKey</c>) builds an OpenSSL 3.0 EVP_PKEY and,
/// at its first operation, a provider copy of it: 4-6 times the cost of the RSA operation itself, which is why imported
/// key objects are cached. Setting the two numbers on a bare RSA structure and encrypting costs about what one
/// encryption with an already imported key costs (measured on this VM: 26-28 µs of CPU against 26 µs with a kept key
/// object and 150-230 µs for an import and encryption), so a list of any size is re-keyed at the raw RSA rate without
/// holding ~3 KB of key object per member (docs/design.md, "Lists of 100,000 members"). The padding's random octets come
/// from OpenSSL's default generator, as with <c>RSA.Encrypt</c>. Where libcrypto.so.3 cannot be loaded, or OpenSSL
/// refuses the key, the caller falls back to the key-object path.
/// </remarks>
internal static class RsaPublicEncryption
{
    private const int RsaPkcs1Padding = 1; // RSA_PKCS1_PADDING

    private static volatile bool s_unavailable;

    /// <summary>False when libcrypto.so.3 could not be loaded (every call then returns false).</summary>
    public static bool IsAvailable => !s_unavailable;

    /// <summary>Encrypts <paramref name="data"/> for the key (<paramref name="modulus"/>, <paramref name="exponent"/>, both
    /// unsigned big-endian) into <paramref name="destination"/>, which must be exactly the modulus length. False when the
    /// native path is not available or OpenSSL refused the key or the length (nothing is written then that counts).</summary>
    public static bool TryEncryptPkcs1(ReadOnlySpan<byte> modulus, ReadOnlySpan<byte> exponent, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (s_unavailable || modulus.IsEmpty || exponent.IsEmpty || data.IsEmpty || destination.IsEmpty)
        {
            return false;
        }

        try
        {
            return Encrypt(modulus, exponent, data, destination);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_unavailable = true;
            return false;
        }
    }

    private static bool Encrypt(ReadOnlySpan<byte> modulus, ReadOnlySpan<byte> exponent, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        IntPtr n = NativeMethods.BN_bin2bn(in MemoryMarshal.GetReference(modulus), modulus.Length, IntPtr.Zero);
        IntPtr e = NativeMethods.BN_bin2bn(in MemoryMarshal.GetReference(exponent), exponent.Length, IntPtr.Zero);
        IntPtr rsa = NativeMethods.RSA_new();
        bool ok = false;
        try
        {
            if (n == IntPtr.Zero || e == IntPtr.Zero || rsa == IntPtr.Zero || NativeMethods.RSA_set0_key(rsa, n, e, IntPtr.Zero) != 1)
            {
                return false;
            }

            // The RSA structure owns both numbers now.
            n = IntPtr.Zero;
            e = IntPtr.Zero;
            if (NativeMethods.RSA_size(rsa) != destination.Length)
            {
                return false;
            }

            int written = NativeMethods.RSA_public_encrypt(data.Length, in MemoryMarshal.GetReference(data),
                ref MemoryMarshal.GetReference(destination), rsa, RsaPkcs1Padding);
            ok = written == destination.Length;
            return ok;
        }
        finally
        {
            if (!ok)
            {
                // A refused key or length (public facts): leave no error in OpenSSL's per-thread queue for .NET's next call.
                NativeMethods.ERR_clear_error();
            }

            NativeMethods.RSA_free(rsa);
            NativeMethods.BN_free(n);
            NativeMethods.BN_free(e);
        }
    }

    private static class NativeMethods
    {
        // The same libcrypto that .NET's System.Security.Cryptography.Native.OpenSsl shim has already loaded.
        private const string LibCrypto = "libcrypto.so.3";

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern IntPtr BN_bin2bn(in byte s, int length, IntPtr ret);

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern void BN_free(IntPtr bn);

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern IntPtr RSA_new();

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern void RSA_free(IntPtr rsa);

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int RSA_set0_key(IntPtr rsa, IntPtr n, IntPtr e, IntPtr d);

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int RSA_size(IntPtr rsa);

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int RSA_public_encrypt(int length, in byte from, ref byte to, IntPtr rsa, int padding);

        [DllImport(LibCrypto)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern void ERR_clear_error();
    }
}
