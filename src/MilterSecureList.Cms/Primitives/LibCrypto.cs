using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MilterSecureList.Cms.Primitives;

/// <summary>The few OpenSSL 3 entry points the engine calls itself, in the same libcrypto that .NET's
/// System.Security.Cryptography.Native.OpenSsl shim has already loaded (docs/design.md, "Which library does what").</summary>
internal static class LibCrypto
{
    private const string Library = "libcrypto.so.3";

    public const int RsaPkcs1Padding = 1; // RSA_PKCS1_PADDING
    public const int RsaNoPadding = 3; // RSA_NO_PADDING

    // --- the list key's private operation (RsaDecryptionPrimitive) ---

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern IntPtr EVP_PKEY_CTX_new(IntPtr pkey, IntPtr engine);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int EVP_PKEY_decrypt_init(IntPtr ctx);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int EVP_PKEY_CTX_set_rsa_padding(IntPtr ctx, int padding);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int EVP_PKEY_decrypt(IntPtr ctx, ref byte output, ref nuint outputLength, in byte input, nuint inputLength);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern void EVP_PKEY_CTX_free(IntPtr ctx);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern void ERR_clear_error();

    // --- members' public-key operations (RsaPublicKeyObject) ---

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern SafeRsaHandle d2i_RSAPublicKey(IntPtr existing, ref IntPtr input, nint length);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int RSA_size(SafeRsaHandle rsa);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int RSA_public_encrypt(int length, in byte input, ref byte output, SafeRsaHandle rsa, int padding);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern int RSA_padding_add_PKCS1_OAEP_mgf1(ref byte output, int outputLength, in byte input, int inputLength,
        IntPtr label, int labelLength, IntPtr md, IntPtr mgf1Md);

    [DllImport(Library)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern void RSA_free(IntPtr rsa);

    [DllImport(Library, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    public static extern IntPtr EVP_MD_fetch(IntPtr libraryContext, [MarshalAs(UnmanagedType.LPStr)] string algorithm, IntPtr properties);

    /// <summary>An OpenSSL <c>RSA*</c> (public key only), freed with <c>RSA_free</c>.</summary>
    internal sealed class SafeRsaHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public SafeRsaHandle()
            : base(ownsHandle: true)
        {
        }

        protected override bool ReleaseHandle()
        {
            RSA_free(handle);
            return true;
        }
    }
}
