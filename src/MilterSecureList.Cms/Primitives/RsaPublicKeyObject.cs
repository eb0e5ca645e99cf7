using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace MilterSecureList.Cms.Primitives;

/// <summary>A member's imported RSA public key: RSAES-PKCS1-v1_5 or RSAES-OAEP-SHA256 encryption of a content key
/// (or double-wrap blob) straight into the caller's span. Safe to use from several threads at once.</summary>
/// <remarks>
/// This is the one operation a re-key repeats per member, so it goes to OpenSSL as directly as OpenSSL allows:
/// <c>RSA_public_encrypt</c> on an <c>RSA</c> object read from the certificate's RSAPublicKey bytes. .NET's
/// <see cref="RSA.Encrypt(ReadOnlySpan{byte}, Span{byte}, RSAEncryptionPadding)"/> builds, initialises and frees an
/// <c>EVP_PKEY_CTX</c> around every operation (a provider fetch, parameter translation, read locks), about a fifth
/// of the whole operation's CPU on this machine; a context kept per key would serve one thread at a time, while the
/// <c>RSA</c> object serves every thread (OpenSSL locks only the Montgomery setup of the first operation). The
/// <c>RSA_*</c> calls are deprecated in OpenSSL 3 but present in every libcrypto.so.3 (docs/design.md, "Re-key:
/// where the time goes"). Where libcrypto.so.3 or one of these entry points is missing, .NET's <see cref="RSA"/> does
/// the same operation.
/// </remarks>
internal sealed class RsaPublicKeyObject : IDisposable
{
    // SHA-256 as a provider object fetched once: OAEP's legacy EVP_sha256() pointer would be fetched again per digest.
    private static readonly IntPtr s_sha256 = Probe();

    private readonly LibCrypto.SafeRsaHandle? _native;
    private readonly RSA? _managed;

    private RsaPublicKeyObject(LibCrypto.SafeRsaHandle? native, RSA? managed, int modulusLength)
    {
        _native = native;
        _managed = managed;
        ModulusLength = modulusLength;
    }

    /// <summary>True when this process reaches OpenSSL directly (false: the <see cref="RSA"/> fallback).</summary>
    public static bool OpenSslAvailable => s_sha256 != IntPtr.Zero;

    /// <summary>k, the modulus length in bytes: the length of every ciphertext.</summary>
    public int ModulusLength { get; }

    /// <summary>True when this key's operations run in OpenSSL directly.</summary>
    public bool UsesOpenSsl => _native is not null;

    /// <summary>Imports an RSAPublicKey (RFC 8017 §A.1.1, DER) whose modulus is <paramref name="modulusLength"/> bytes.</summary>
    /// <exception cref="CryptographicException">The key cannot be imported.</exception>
    public static RsaPublicKeyObject Import(ReadOnlySpan<byte> rsaPublicKey, int modulusLength) =>
        Import(rsaPublicKey, modulusLength, OpenSslAvailable);

    /// <summary>With <paramref name="useOpenSsl"/> false, the <see cref="RSA"/> fallback (tests).</summary>
    internal static RsaPublicKeyObject Import(ReadOnlySpan<byte> rsaPublicKey, int modulusLength, bool useOpenSsl)
    {
        if (!useOpenSsl)
        {
            RSA rsa = RSA.Create();
            try
            {
                rsa.ImportRSAPublicKey(rsaPublicKey, out _);
                return new RsaPublicKeyObject(null, rsa, modulusLength);
            }
            catch
            {
                rsa.Dispose();
                throw;
            }
        }

        // d2i reads through a pointer it advances: give it a pinned copy (public bytes, a few hundred of them).
        byte[] der = rsaPublicKey.ToArray();
        GCHandle pin = GCHandle.Alloc(der, GCHandleType.Pinned);
        LibCrypto.SafeRsaHandle native;
        try
        {
            IntPtr p = pin.AddrOfPinnedObject();
            native = LibCrypto.d2i_RSAPublicKey(IntPtr.Zero, ref p, der.Length);
        }
        finally
        {
            pin.Free();
        }

        if (native.IsInvalid || LibCrypto.RSA_size(native) != modulusLength)
        {
            native.Dispose();
            LibCrypto.ERR_clear_error();
            throw new CryptographicException("the RSA public key cannot be imported");
        }

        return new RsaPublicKeyObject(native, null, modulusLength);
    }

    /// <summary>Encrypts <paramref name="data"/> into <paramref name="destination"/> (exactly <see cref="ModulusLength"/>
    /// bytes) with PKCS#1 v1.5, or OAEP with SHA-256 and MGF1-SHA-256 and an empty label.</summary>
    /// <exception cref="CryptographicException">The operation failed.</exception>
    public void Encrypt(ReadOnlySpan<byte> data, Span<byte> destination, bool oaep)
    {
        int k = ModulusLength;
        if (destination.Length != k || data.IsEmpty)
        {
            throw new CryptographicException("RSA encryption: wrong buffer length");
        }

        if (_native is null)
        {
            if (_managed!.Encrypt(data, destination, oaep ? RSAEncryptionPadding.OaepSHA256 : RSAEncryptionPadding.Pkcs1) != k)
            {
                throw new CryptographicException("RSA ciphertext has an unexpected length");
            }

            return;
        }

        int written;
        if (!oaep)
        {
            written = LibCrypto.RSA_public_encrypt(data.Length, in MemoryMarshal.GetReference(data), ref MemoryMarshal.GetReference(destination),
                _native, LibCrypto.RsaPkcs1Padding);
        }
        else
        {
            // EME-OAEP encoding (RFC 8017 §7.1.1) here, then the bare RSAEP: the encoded block holds the masked key and
            // lives on the stack (never moved by the GC) until it is cleared.
            Span<byte> em = k <= 1024 ? stackalloc byte[k] : GC.AllocateArray<byte>(k, pinned: true);
            try
            {
                written = LibCrypto.RSA_padding_add_PKCS1_OAEP_mgf1(ref MemoryMarshal.GetReference(em), k, in MemoryMarshal.GetReference(data),
                    data.Length, IntPtr.Zero, 0, s_sha256, s_sha256) == 1
                    ? LibCrypto.RSA_public_encrypt(k, in MemoryMarshal.GetReference(em), ref MemoryMarshal.GetReference(destination), _native,
                        LibCrypto.RsaNoPadding)
                    : -1;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(em);
            }
        }

        if (written != k)
        {
            LibCrypto.ERR_clear_error();
            throw new CryptographicException("RSA encryption failed in OpenSSL");
        }
    }

    public void Dispose()
    {
        _native?.Dispose();
        _managed?.Dispose();
    }

    // Binds every entry point now (a missing one selects the fallback for the process, never a failure mid-message)
    // and fetches SHA-256; IntPtr.Zero when OpenSSL cannot be reached this way.
    private static IntPtr Probe()
    {
        try
        {
            foreach (string name in new[] { nameof(LibCrypto.d2i_RSAPublicKey), nameof(LibCrypto.RSA_size), nameof(LibCrypto.RSA_public_encrypt),
                nameof(LibCrypto.RSA_padding_add_PKCS1_OAEP_mgf1), nameof(LibCrypto.RSA_free), nameof(LibCrypto.ERR_clear_error) })
            {
                Marshal.Prelink(typeof(LibCrypto).GetMethod(name)!);
            }

            return LibCrypto.EVP_MD_fetch(IntPtr.Zero, "SHA256", IntPtr.Zero);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return IntPtr.Zero;
        }
    }
}
