using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MilterSecureList.Directory;

/// <summary>Result of checking a certificate for use as an S/MIME encryption recipient.</summary>
public readonly record struct CertificateCheck(CertificateStatus Status, string? Problem)
{
    public bool IsUsable => Status == CertificateStatus.Usable;
}

/// <summary>
/// Loads certificates (PEM, DER, PKCS#12) and decides whether they can receive S/MIME mail:
/// RSA of at least 2048 bits or EC on P-256/P-384/P-521; keyUsage, when present, allows
/// keyEncipherment (RSA, RFC 8550 section 4.4.2) or keyAgreement (EC, RFC 5753 section 7);
/// inside its validity period.
/// </summary>
public static class CertificateInspector
{
    public const int MinRsaBits = 2048;

    /// <summary>Largest certificate file we read; real ones are a few KB.</summary>
    public const int MaxInputBytes = 1 << 20;

    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";
    private const string EmailAddressOid = "1.2.840.113549.1.9.1";
    private const string SubjectAltNameOid = "2.5.29.17";

    private static readonly Dictionary<string, string> s_curves = new(StringComparer.Ordinal)
    {
        ["1.2.840.10045.3.1.7"] = "P-256",
        ["1.3.132.0.34"] = "P-384",
        ["1.3.132.0.35"] = "P-521",
    };

    /// <summary>Reads a certificate file; errors name the file.</summary>
    public static X509Certificate2 LoadFile(string path, string? pkcs12Password = null)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new DirectoryException(DirectoryError.BadCertificate, "no certificate file given");
        }

        byte[] data = BoundedFile.ReadAllBytes(path, MaxInputBytes, DirectoryError.BadCertificate, "certificate");
        return Load(data, path, pkcs12Password);
    }

    /// <summary>Loads the first certificate of a PEM file, a DER certificate, or the end-entity certificate of a PKCS#12 file.</summary>
    public static X509Certificate2 Load(ReadOnlySpan<byte> data, string source, string? pkcs12Password = null)
    {
        if (data.Length > MaxInputBytes)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: larger than {MaxInputBytes} bytes, not a certificate");
        }

        if (LooksLikePem(data))
        {
            string text = Encoding.ASCII.GetString(data);
            ReadOnlySpan<char> remaining = text;
            while (PemEncoding.TryFind(remaining, out PemFields fields))
            {
                if (remaining[fields.Label].SequenceEqual("CERTIFICATE"))
                {
                    byte[] der = Convert.FromBase64String(remaining[fields.Base64Data].ToString());
                    return LoadDer(der, source);
                }

                remaining = remaining[fields.Location.End.GetOffset(remaining.Length)..];
            }

            throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: PEM without a CERTIFICATE block");
        }

        try
        {
            return X509CertificateLoader.LoadCertificate(data);
        }
        catch (CryptographicException)
        {
            // Not a DER certificate: try PKCS#12 before giving up.
        }

        try
        {
            X509Certificate2Collection collection = X509CertificateLoader.LoadPkcs12Collection(data, pkcs12Password);
            X509Certificate2? chosen = null;
            foreach (X509Certificate2 candidate in collection)
            {
                if (chosen is null && (candidate.HasPrivateKey || !IsCa(candidate)))
                {
                    chosen = candidate;
                }
                else
                {
                    candidate.Dispose();
                }
            }

            if (chosen is null)
            {
                throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: PKCS#12 file without an end-entity certificate");
            }

            // Keep only the public part: member certificates never carry keys in the directory.
            X509Certificate2 publicOnly = X509CertificateLoader.LoadCertificate(chosen.RawData);
            chosen.Dispose();
            return publicOnly;
        }
        catch (CryptographicException)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: not a PEM, DER or PKCS#12 certificate (or wrong PKCS#12 password)");
        }
    }

    private static X509Certificate2 LoadDer(byte[] der, string source)
    {
        try
        {
            return X509CertificateLoader.LoadCertificate(der);
        }
        catch (CryptographicException e)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: malformed certificate ({e.Message})", e);
        }
    }

    private static bool LooksLikePem(ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<byte> trimmed = data.TrimStart(" \t\r\n"u8);
        return trimmed.StartsWith("-----BEGIN"u8) || data.IndexOf("-----BEGIN"u8) >= 0 && data.IndexOf((byte)0) < 0;
    }

    private static bool IsCa(X509Certificate2 certificate)
    {
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension is X509BasicConstraintsExtension basic)
            {
                return basic.CertificateAuthority;
            }
        }

        return false;
    }

    /// <summary>Key type, key usage and validity at NOW.</summary>
    public static CertificateCheck Check(X509Certificate2 certificate, DateTimeOffset now)
    {
        CertificateCheck keyCheck = CheckKey(certificate);
        if (!keyCheck.IsUsable)
        {
            return keyCheck;
        }

        DateTimeOffset notBefore = certificate.NotBefore.ToUniversalTime();
        DateTimeOffset notAfter = certificate.NotAfter.ToUniversalTime();
        if (now < notBefore)
        {
            return new CertificateCheck(CertificateStatus.NotYetValid, $"certificate not valid before {notBefore:yyyy-MM-dd HH:mm:ss}Z");
        }

        if (now > notAfter)
        {
            return new CertificateCheck(CertificateStatus.Expired, $"certificate expired on {notAfter:yyyy-MM-dd HH:mm:ss}Z");
        }

        return new CertificateCheck(CertificateStatus.Usable, null);
    }

    /// <summary>Key algorithm, size or curve, and keyUsage. Ignores validity.</summary>
    public static CertificateCheck CheckKey(X509Certificate2 certificate)
    {
        string? oid = certificate.PublicKey.Oid?.Value;
        bool isRsa;
        if (oid == RsaOid)
        {
            isRsa = true;
            using RSA? rsa = certificate.GetRSAPublicKey();
            int bits = rsa?.KeySize ?? 0;
            if (bits < MinRsaBits)
            {
                return new CertificateCheck(CertificateStatus.Unusable, $"RSA key of {bits} bits is too small (at least {MinRsaBits})");
            }
        }
        else if (oid == EcPublicKeyOid)
        {
            isRsa = false;
            string? curve = ReadCurveOid(certificate.PublicKey.EncodedParameters?.RawData);
            if (curve is null || !s_curves.ContainsKey(curve))
            {
                return new CertificateCheck(CertificateStatus.Unusable, $"EC curve {curve ?? "(explicit parameters)"} is not supported (P-256, P-384 or P-521)");
            }
        }
        else
        {
            string name = certificate.PublicKey.Oid?.FriendlyName ?? oid ?? "unknown";
            return new CertificateCheck(CertificateStatus.Unusable, $"key type {name} ({oid}) cannot receive S/MIME mail (RSA >= {MinRsaBits} or EC P-256/P-384/P-521)");
        }

        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension is X509KeyUsageExtension usage)
            {
                X509KeyUsageFlags needed = isRsa ? X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.KeyAgreement;
                if ((usage.KeyUsages & needed) == 0)
                {
                    return new CertificateCheck(CertificateStatus.Unusable, $"keyUsage ({usage.KeyUsages}) does not allow {(isRsa ? "keyEncipherment" : "keyAgreement")}");
                }
            }
        }

        return new CertificateCheck(CertificateStatus.Usable, null);
    }

    /// <summary>"RSA-2048", "EC P-256", ... for display.</summary>
    public static string DescribeKey(X509Certificate2 certificate)
    {
        string? oid = certificate.PublicKey.Oid?.Value;
        if (oid == RsaOid)
        {
            using RSA? rsa = certificate.GetRSAPublicKey();
            return $"RSA-{rsa?.KeySize}";
        }

        if (oid == EcPublicKeyOid)
        {
            string? curve = ReadCurveOid(certificate.PublicKey.EncodedParameters?.RawData);
            return curve is not null && s_curves.TryGetValue(curve, out string? name) ? $"EC {name}" : $"EC {curve}";
        }

        return certificate.PublicKey.Oid?.FriendlyName ?? oid ?? "unknown";
    }

    private static string? ReadCurveOid(byte[]? parameters)
    {
        try
        {
            if (parameters is null)
            {
                return null;
            }

            // RFC 5480 section 2.1.1: ECParameters ::= CHOICE { namedCurve OBJECT IDENTIFIER, ... }
            return AsnDecoder.ReadObjectIdentifier(parameters, AsnEncodingRules.DER, out _);
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    /// <summary>Addresses the certificate is issued to: SAN rfc822Name values, then subject emailAddress.</summary>
    public static IReadOnlyList<string> GetEmailAddresses(X509Certificate2 certificate)
    {
        var addresses = new List<string>();
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension.Oid?.Value == SubjectAltNameOid)
            {
                ReadRfc822Names(extension.RawData, addresses);
            }
        }

        foreach (X500RelativeDistinguishedName rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value == EmailAddressOid)
            {
                string? value = rdn.GetSingleElementValue();
                if (!string.IsNullOrEmpty(value))
                {
                    addresses.Add(value);
                }
            }
        }

        return addresses;
    }

    private static void ReadRfc822Names(byte[] extensionValue, List<string> into)
    {
        try
        {
            // RFC 5280 section 4.2.1.6: GeneralNames ::= SEQUENCE OF GeneralName;
            // GeneralName ::= CHOICE { ..., rfc822Name [1] IA5String, ... } (implicit tags)
            var reader = new AsnReader(extensionValue, AsnEncodingRules.DER);
            AsnReader names = reader.ReadSequence();
            var rfc822Tag = new Asn1Tag(TagClass.ContextSpecific, 1);
            while (names.HasData)
            {
                if (names.PeekTag().HasSameClassAndValue(rfc822Tag))
                {
                    into.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, rfc822Tag));
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }
        }
        catch (AsnContentException)
        {
            // A malformed SAN names nobody; the address check then fails with a clear message.
        }
    }

    public static bool MatchesAddress(X509Certificate2 certificate, string address)
    {
        foreach (string candidate in GetEmailAddresses(certificate))
        {
            if (EmailAddress.Comparer.Equals(candidate.Trim(), address.Trim()))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The import-time gate: the key must be usable, the certificate valid now, and (unless
    /// <paramref name="allowMismatch"/>) issued to <paramref name="address"/>.
    /// </summary>
    public static void RequireAcceptable(X509Certificate2 certificate, string address, bool allowMismatch, DateTimeOffset now, string source)
    {
        CertificateCheck check = Check(certificate, now);
        if (!check.IsUsable)
        {
            throw new DirectoryException(DirectoryError.BadCertificate, $"{source}: {check.Problem}");
        }

        if (!allowMismatch && !MatchesAddress(certificate, address))
        {
            IReadOnlyList<string> names = GetEmailAddresses(certificate);
            string issuedTo = names.Count == 0 ? "no mail address" : string.Join(", ", names.Distinct(EmailAddress.Comparer));
            throw new DirectoryException(
                DirectoryError.BadCertificate,
                $"{source}: certificate is issued to {issuedTo}, not {address} (use --allow-mismatch to accept it anyway)");
        }
    }

    /// <summary>SHA-256 fingerprint, upper-case hex with colons, as openssl x509 -fingerprint prints it.</summary>
    public static string Sha256Fingerprint(X509Certificate2 certificate)
    {
        byte[] hash = certificate.GetCertHash(HashAlgorithmName.SHA256);
        return string.Join(':', hash.Select(b => b.ToString("X2")));
    }

    public static string ToPem(X509Certificate2 certificate) =>
        new string(PemEncoding.Write("CERTIFICATE", certificate.RawData)) + "\n";
}
