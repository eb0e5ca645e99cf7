using System.Collections.Concurrent;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms;

namespace MilterSecureList.KeyRelease;

/// <summary>
/// Member certificates that signed a request which then passed the certificate check (docs/key-release.md §4.2, check
/// 5), with their parsed public keys: a later request signed under the same certificate is verified without parsing the
/// certificate or importing its key again (docs/key-release.md, Performance).
/// </summary>
/// <remarks>
/// The cache decides nothing: it holds only what the certificate's bytes determine (the certificate, its RSA key, its
/// issuer and serial number), keyed by the SHA-256 of those bytes. Every request still passes every check, check 5
/// included against the directory as it is now, so a member removed or given a new certificate is refused as before.
/// Only RSA certificates are kept; other requests take the general path. Bounded: when full it starts over.
/// </remarks>
public sealed class ReleaseSignerCache
{
    private const int MaxEntries = 4096;
    private readonly ConcurrentDictionary<string, Signer> _signers = new(StringComparer.Ordinal);

    /// <summary>Keeps <paramref name="certificate"/> (which stays the caller's) after it passed the certificate check.</summary>
    public void Remember(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string key = Key(certificate.RawDataMemory.Span);
        if (_signers.ContainsKey(key) || certificate.GetRSAPublicKey() is not { } rsa)
        {
            return;
        }

        if (_signers.Count >= MaxEntries)
        {
            Clear();
        }

        X509Certificate2 copy = X509CertificateLoader.LoadCertificate(certificate.RawDataMemory.Span);
        if (IssuerAndSerialNumber(copy) is not { } sid)
        {
            rsa.Dispose();
            copy.Dispose();
            return;
        }

        var signer = new Signer(copy, rsa, sid);
        if (!_signers.TryAdd(key, signer))
        {
            signer.Dispose();
        }
    }

    /// <summary>The cached signer for a certificate's DER bytes, or null.</summary>
    internal Signer? Find(ReadOnlySpan<byte> certificateDer) =>
        _signers.TryGetValue(Key(certificateDer), out Signer? signer) ? signer : null;

    private void Clear()
    {
        // Entries in use by a request in flight stay usable: only the dictionary forgets them; the keys are left to the
        // finaliser rather than disposed under a concurrent verification.
        _signers.Clear();
    }

    private static string Key(ReadOnlySpan<byte> der) => Convert.ToHexString(SHA256.HashData(der));

    private static byte[]? IssuerAndSerialNumber(X509Certificate2 certificate)
    {
        // Taken from the certificate's own encoding (TBSCertificate: [0] version, serialNumber, signature, issuer), so the
        // comparison with a request's signer identifier is a byte comparison of what the certificate says.
        try
        {
            AsnReader tbs = new AsnReader(certificate.RawDataMemory, AsnEncodingRules.DER).ReadSequence().ReadSequence();
            if (tbs.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
            {
                tbs.ReadEncodedValue();
            }

            ReadOnlyMemory<byte> serial = tbs.ReadEncodedValue();
            tbs.ReadEncodedValue();
            ReadOnlyMemory<byte> issuer = tbs.ReadEncodedValue();
            var w = new AsnWriter(AsnEncodingRules.DER);
            using (w.PushSequence())
            {
                w.WriteEncodedValue(issuer.Span);
                w.WriteEncodedValue(serial.Span);
            }

            return w.Encode();
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    /// <summary>A certificate that passed check 5 once, its RSA public key and its IssuerAndSerialNumber (DER).</summary>
    internal sealed class Signer(X509Certificate2 certificate, RSA publicKey, byte[] issuerAndSerial) : IDisposable
    {
        public X509Certificate2 Certificate { get; } = certificate;

        public RSA PublicKey { get; } = publicKey;

        public byte[] IssuerAndSerial { get; } = issuerAndSerial;

        public void Dispose()
        {
            PublicKey.Dispose();
            Certificate.Dispose();
        }
    }
}
