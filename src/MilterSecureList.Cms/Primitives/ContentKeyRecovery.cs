using System.Formats.Asn1;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms.Primitives;

/// <summary>Recovers the content-encryption key from the list's RecipientInfo without a padding oracle.</summary>
/// <remarks>
/// The milter decrypts PKCS#1 v1.5 ciphertexts from anyone, so it is a Bleichenbacher oracle unless a failed
/// unwrap is indistinguishable from a successful one (docs/design.md, "No padding oracle"). Key transport runs the
/// bare RSA operation and decodes the padding in constant time with implicit rejection (<see cref="KeyTransportDecoder"/>):
/// a bad ciphertext yields a synthetic key derived from the private key and the ciphertext, through the same code and
/// in the same time as a good one. Key agreement ends in <see cref="Select"/> with fresh random bytes (the sender knows
/// every secret of a key agreement anyway). Structure and algorithm checks happen before any private-key work, so
/// the exceptions they raise depend only on public data.
/// </remarks>
internal static class ContentKeyRecovery
{
    /// <summary>Returns a pinned array of exactly <paramref name="cekLength"/> bytes. Caller zeroes it.</summary>
    public static byte[] Recover(in RecipientInfoAsn ri, ListKey key, int cekLength)
    {
        if (ri.KeyTrans is { } ktri)
        {
            return RecoverKeyTrans(ktri, key, cekLength);
        }

        if (ri.KeyAgree is { } kari)
        {
            return RecoverKeyAgree(kari, key, cekLength);
        }

        throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"RecipientInfo type {ri.Kind} cannot carry the list key");
    }

    private static byte[] RecoverKeyTrans(in KeyTransRecipientInfoAsn ktri, ListKey key, int cekLength)
    {
        AlgorithmIdentifierAsn alg = ktri.KeyEncryptionAlgorithm;
        RsaesOaepParamsAsn? oaep = alg.Algorithm switch
        {
            Oids.RsaEncryption when alg.HasNullOrAbsentParameters => null,
            Oids.RsaEncryption => throw new CmsRewrapException(CmsRewrapFailure.Malformed, "rsaEncryption parameters must be NULL or absent"),
            Oids.RsaesOaep => DecoderBoundary.Decode(alg.Parameters, RsaesOaepParamsAsn.Decode, "malformed RSAES-OAEP parameters"),
            _ => throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"key transport algorithm {alg.Algorithm} is not supported"),
        };
        RsaDecryptionPrimitive rsa = key.RsaPrimitive
            ?? throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, "a key-transport RecipientInfo names an EC list certificate");

        // From here on every ciphertext takes the same path: RSADP, the rejection key, one constant-time decoding.
        int k = rsa.ModulusLength;
        ReadOnlySpan<byte> c = ktri.EncryptedKey.Span;
        byte[] cek = GC.AllocateArray<byte>(cekLength, pinned: true);
        byte[] em = GC.AllocateArray<byte>(k, pinned: true);
        byte[] padded = GC.AllocateArray<byte>(k, pinned: true);
        Span<byte> kdk = stackalloc byte[32];
        try
        {
            // Some encoders drop leading zero octets of the ciphertext; RSADP takes it as the integer it is.
            if (c.Length <= k)
            {
                c.CopyTo(padded.AsSpan(k - c.Length));
            }

            rsa.DeriveRejectionKey(c.Length <= k ? padded : c, kdk);
            if (c.Length > k || !rsa.TryDecrypt(padded, em))
            {
                // Not an RSA input at all (too long, or not below the modulus): public facts, same outcome as bad padding.
                Array.Clear(em);
            }

            if (oaep is null)
            {
                KeyTransportDecoder.DecodePkcs1(em, kdk, cek);
            }
            else
            {
                KeyTransportDecoder.DecodeOaep(em, kdk, oaep, cek);
            }

            return cek;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(em);
            CryptographicOperations.ZeroMemory(padded);
            CryptographicOperations.ZeroMemory(kdk);
        }
    }

    private static byte[] RecoverKeyAgree(in KeyAgreeRecipientInfoAsn kari, ListKey key, int cekLength)
    {
        ECDiffieHellman ecdh = key.Ecdh ?? throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, "a key-agreement RecipientInfo names an RSA list certificate");
        if (kari.Version != 3)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "KeyAgreeRecipientInfo version is not 3");
        }

        if (!X963Kdf.TryGetScheme(kari.KeyEncryptionAlgorithm.Algorithm, out string hash))
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"key agreement scheme {kari.KeyEncryptionAlgorithm.Algorithm} is not supported");
        }

        if (kari.KeyEncryptionAlgorithm.Parameters is not { } wrapEncoded)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "key agreement scheme has no key-wrap algorithm");
        }

        AlgorithmIdentifierAsn wrap = DecoderBoundary.Decode(wrapEncoded, AlgorithmIdentifierAsn.DecodeWhole, "malformed key-wrap algorithm");
        int kekLength = KeyWrap.KekLength(wrap.Algorithm);
        if (kekLength == 0 || !wrap.HasNullOrAbsentParameters)
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"key wrap algorithm {wrap.Algorithm} is not supported");
        }

        if (KeyWrap.WrappedLength(wrap.Algorithm, cekLength) == 0)
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, $"key wrap algorithm {wrap.Algorithm} cannot carry a {cekLength}-byte content key");
        }

        if (kari.OriginatorPublicKey is not { } point)
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, "static-static ECDH (originator named by certificate) is not supported");
        }

        ECParameters mine = ecdh.ExportParameters(false);
        int coord = EcCurves.CoordinateLength(mine.Curve);
        if (coord == 0)
        {
            throw new CmsRewrapException(CmsRewrapFailure.UnsupportedAlgorithm, "the list key's EC curve is not P-256/P-384/P-521");
        }

        if (point.Length != 1 + (2 * coord) || point.Span[0] != 0x04)
        {
            throw new CmsRewrapException(CmsRewrapFailure.Malformed, "originator public key is not an uncompressed point on the list key's curve");
        }

        ReadOnlyMemory<byte> encryptedKey = default;
        foreach ((RecipientIdentifierAsn rid, ReadOnlyMemory<byte> ek) in kari.RecipientEncryptedKeys)
        {
            if (key.Matches(rid))
            {
                encryptedKey = ek;
                break;
            }
        }

        byte[] sharedInfo = EncodeSharedInfo(wrap.Encoded.Span, kari.Ukm, kekLength);
        byte[] cek = GC.AllocateArray<byte>(cekLength, pinned: true);
        byte[] random = GC.AllocateArray<byte>(cekLength, pinned: true);
        byte[] unwrapped = GC.AllocateArray<byte>(cekLength, pinned: true);
        byte[] kek = GC.AllocateArray<byte>(kekLength, pinned: true);
        byte[]? z = null;
        RandomNumberGenerator.Fill(random);
        bool ok;
        try
        {
            try
            {
                var peerParams = new ECParameters
                {
                    Curve = mine.Curve,
                    Q = new ECPoint { X = point.Span.Slice(1, coord).ToArray(), Y = point.Span.Slice(1 + coord, coord).ToArray() },
                };
                using ECDiffieHellman peer = ECDiffieHellman.Create(peerParams);
                z = ecdh.DeriveRawSecretAgreement(peer.PublicKey);
                X963Kdf.DeriveKey(hash, z, sharedInfo, kek);
                ok = KeyWrap.TryUnwrap(wrap.Algorithm, kek, encryptedKey.Span, unwrapped);
            }
            catch (CryptographicException)
            {
                ok = false;
            }

            Select(unwrapped, ok, random, cek);
            return cek;
        }
        finally
        {
            if (z is not null)
            {
                CryptographicOperations.ZeroMemory(z);
            }

            CryptographicOperations.ZeroMemory(kek);
            CryptographicOperations.ZeroMemory(unwrapped);
            CryptographicOperations.ZeroMemory(random);
        }
    }

    // RFC 5753 §7.2
    // ECC-CMS-SharedInfo ::= SEQUENCE {
    //   keyInfo      AlgorithmIdentifier,                 -- the key-wrap algorithm, bytes as in the message
    //   entityUInfo  [0] EXPLICIT OCTET STRING OPTIONAL,  -- ukm
    //   suppPubInfo  [2] EXPLICIT OCTET STRING }          -- KEK length in bits, 32-bit big-endian
    internal static byte[] EncodeSharedInfo(ReadOnlySpan<byte> keyInfo, ReadOnlyMemory<byte>? ukm, int kekLength)
    {
        var w = new AsnWriter(AsnEncodingRules.DER, 64 + keyInfo.Length + (ukm?.Length ?? 0));
        using (w.PushSequence())
        {
            w.WriteEncodedValue(keyInfo);
            if (ukm is { } u)
            {
                using (w.PushSequence(AsnTags.Constructed0))
                {
                    w.WriteOctetString(u.Span);
                }
            }

            using (w.PushSequence(AsnTags.Constructed2))
            {
                Span<byte> bits = [0, 0, (byte)((kekLength * 8) >> 8), (byte)(kekLength * 8)];
                w.WriteOctetString(bits);
            }
        }

        return w.Encode();
    }

    /// <summary>dest = ok ? candidate : random, without a data-dependent branch per byte.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    private static void Select(ReadOnlySpan<byte> candidate, bool ok, ReadOnlySpan<byte> random, Span<byte> dest)
    {
        byte mask = (byte)-(ok ? 1 : 0);
        for (int i = 0; i < dest.Length; i++)
        {
            dest[i] = (byte)((candidate[i] & mask) | (random[i] & ~mask));
        }
    }
}
