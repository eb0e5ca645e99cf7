using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;

namespace MilterSecureList.Cms.Primitives;

/// <summary>RSADP (RFC 8017 §5.1.2): the bare private-key operation m = c^d mod n, with no padding removed, so that
/// the padding can be checked by our own constant-time code (docs/design.md, "No padding oracle").</summary>
/// <remarks>
/// .NET's <see cref="RSA.Decrypt(byte[], RSAEncryptionPadding)"/> has no "no padding" mode, and with OpenSSL 3.0 it
/// throws on bad PKCS#1 v1.5 padding; the exception alone was a measurable timing signal. The operation runs in
/// OpenSSL (EVP_PKEY_decrypt with RSA_NO_PADDING, blinded, as fast as RSA.Decrypt) on a private copy of the key.
/// Where libcrypto.so.3 cannot be loaded, BouncyCastle's blinded engine does the same operation, about 20 times slower.
/// The key also yields the key-derivation key of the implicit rejection (<see cref="DeriveRejectionKey"/>).
/// </remarks>
internal sealed class RsaDecryptionPrimitive : IDisposable
{
    private readonly RSAOpenSsl? _openSsl;
    private readonly SafeEvpPKeyHandle? _pkey;
    private readonly RsaBlindedEngine? _fallback;
    private readonly BigInteger? _fallbackModulus;
    private readonly object _fallbackGate = new();

    // SHA-256 of the private exponent (left-padded to the modulus length): the HMAC key of the implicit rejection.
    private readonly byte[] _exponentHash = GC.AllocateArray<byte>(32, pinned: true);

    /// <summary>Copies the private key out of <paramref name="rsa"/> (which stays the caller's).</summary>
    public RsaDecryptionPrimitive(RSA rsa)
        : this(rsa, useOpenSsl: true)
    {
    }

    /// <summary>With <paramref name="useOpenSsl"/> false, the BouncyCastle fallback (tests and the benchmark).</summary>
    internal RsaDecryptionPrimitive(RSA rsa, bool useOpenSsl)
    {
        RSAParameters p = rsa.ExportParameters(true);
        try
        {
            ModulusLength = p.Modulus!.Length;
            byte[] d = GC.AllocateArray<byte>(ModulusLength, pinned: true);
            try
            {
                p.D!.CopyTo(d.AsSpan(ModulusLength - p.D!.Length));
                SHA256.HashData(d, _exponentHash);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(d);
            }

            if (!useOpenSsl || !TryLoadOpenSsl(p, out _openSsl, out _pkey))
            {
                _fallbackModulus = Unsigned(p.Modulus);
                _fallback = new RsaBlindedEngine();
                _fallback.Init(false, new RsaPrivateCrtKeyParameters(_fallbackModulus, Unsigned(p.Exponent!), Unsigned(p.D),
                    Unsigned(p.P!), Unsigned(p.Q!), Unsigned(p.DP!), Unsigned(p.DQ!), Unsigned(p.InverseQ!)));
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(p.D);
            CryptographicOperations.ZeroMemory(p.P);
            CryptographicOperations.ZeroMemory(p.Q);
            CryptographicOperations.ZeroMemory(p.DP);
            CryptographicOperations.ZeroMemory(p.DQ);
            CryptographicOperations.ZeroMemory(p.InverseQ);
        }
    }

    /// <summary>k, the modulus length in bytes.</summary>
    public int ModulusLength { get; }

    /// <summary>True when the operation runs in OpenSSL (false: the BouncyCastle fallback).</summary>
    public bool UsesOpenSsl => _pkey is not null;

    /// <summary>Writes c^d mod n as k bytes into <paramref name="encodedMessage"/>. Returns false only for a ciphertext
    /// that is not a valid RSA input (wrong length, not below the modulus): facts about public data.</summary>
    public bool TryDecrypt(ReadOnlySpan<byte> ciphertext, Span<byte> encodedMessage)
    {
        if (ciphertext.Length != ModulusLength || encodedMessage.Length != ModulusLength)
        {
            return false;
        }

        return _pkey is not null ? TryDecryptOpenSsl(_pkey, ciphertext, encodedMessage) : TryDecryptFallback(ciphertext, encodedMessage);
    }

    /// <summary>KDK = HMAC-SHA256(key = SHA-256(d), message = the ciphertext left-padded to k bytes), as OpenSSL 3.2
    /// derives it for implicit rejection: a secret that depends on the private key and the whole ciphertext.</summary>
    public void DeriveRejectionKey(ReadOnlySpan<byte> ciphertext, Span<byte> kdk)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _exponentHash);
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        for (int pad = ModulusLength - ciphertext.Length; pad > 0; pad -= zeros.Length)
        {
            hmac.AppendData(zeros[..Math.Min(pad, zeros.Length)]);
        }

        hmac.AppendData(ciphertext);
        hmac.GetHashAndReset(kdk);
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_exponentHash);
        _pkey?.Dispose();
        _openSsl?.Dispose();
    }

    private static bool TryDecryptOpenSsl(SafeEvpPKeyHandle pkey, ReadOnlySpan<byte> ciphertext, Span<byte> encodedMessage)
    {
        bool added = false;
        pkey.DangerousAddRef(ref added);
        IntPtr ctx = IntPtr.Zero;
        try
        {
            ctx = LibCrypto.EVP_PKEY_CTX_new(pkey.DangerousGetHandle(), IntPtr.Zero);
            nuint written = (nuint)encodedMessage.Length;
            bool ok = ctx != IntPtr.Zero
                && LibCrypto.EVP_PKEY_decrypt_init(ctx) == 1
                && LibCrypto.EVP_PKEY_CTX_set_rsa_padding(ctx, LibCrypto.RsaNoPadding) == 1
                && LibCrypto.EVP_PKEY_decrypt(ctx, ref MemoryMarshal.GetReference(encodedMessage), ref written,
                    in MemoryMarshal.GetReference(ciphertext), (nuint)ciphertext.Length) == 1
                && written == (nuint)encodedMessage.Length;
            if (!ok)
            {
                // The only refusal for a k-byte input is "data too large for modulus" (public); leave no error behind
                // in OpenSSL's per-thread queue for .NET's own next call.
                LibCrypto.ERR_clear_error();
            }

            return ok;
        }
        finally
        {
            if (ctx != IntPtr.Zero)
            {
                LibCrypto.EVP_PKEY_CTX_free(ctx);
            }

            if (added)
            {
                pkey.DangerousRelease();
            }
        }
    }

    private bool TryDecryptFallback(ReadOnlySpan<byte> ciphertext, Span<byte> encodedMessage)
    {
        if (new BigInteger(1, ciphertext).CompareTo(_fallbackModulus) >= 0)
        {
            return false;
        }

        byte[] m;
        lock (_fallbackGate)
        {
            m = _fallback!.ProcessBlock(ciphertext.ToArray(), 0, ciphertext.Length);
        }

        encodedMessage.Clear();
        m.CopyTo(encodedMessage[(encodedMessage.Length - m.Length)..]);
        CryptographicOperations.ZeroMemory(m);
        return true;
    }

    private static BigInteger Unsigned(byte[] bigEndian) => new(1, bigEndian);

    // Imports the key into OpenSSL and runs one decryption of a zero ciphertext, which loads libcrypto and resolves
    // every entry point now: a missing library selects the fallback at key load instead of failing a message later.
    private static bool TryLoadOpenSsl(RSAParameters p, out RSAOpenSsl? openSsl, out SafeEvpPKeyHandle? pkey)
    {
        openSsl = new RSAOpenSsl(p);
        pkey = openSsl.DuplicateKeyHandle();
        try
        {
            byte[] m = new byte[p.Modulus!.Length];
            TryDecryptOpenSsl(pkey, new byte[m.Length], m);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            pkey.Dispose();
            openSsl.Dispose();
            pkey = null;
            openSsl = null;
            return false;
        }
    }
}
