namespace MilterSecureList.Cms;

/// <summary>Every object identifier the engine understands (an allow-list: anything else is refused).</summary>
/// <remarks>Sources: RFC 5652 (CMS), RFC 5083/5084 (AuthEnvelopedData, AES-GCM), RFC 3565 (AES in CMS),
/// RFC 3394/5649 (AES key wrap), RFC 4055 / RFC 8017 (RSAES-OAEP), RFC 5753 / SEC 1 (ECDH in CMS).</remarks>
public static class Oids
{
    // RFC 5652 §4, §6; RFC 5083 §1
    public const string Data = "1.2.840.113549.1.7.1";
    public const string SignedData = "1.2.840.113549.1.7.2";
    public const string EnvelopedData = "1.2.840.113549.1.7.3";
    public const string AuthEnvelopedData = "1.2.840.113549.1.9.16.1.23";

    // Key transport (RFC 8017 / RFC 4055)
    public const string RsaEncryption = "1.2.840.113549.1.1.1";
    public const string RsaesOaep = "1.2.840.113549.1.1.7";
    public const string Mgf1 = "1.2.840.113549.1.1.8";
    public const string PSpecified = "1.2.840.113549.1.1.9";

    // Hashes
    public const string Sha1 = "1.3.14.3.2.26";
    public const string Sha224 = "2.16.840.1.101.3.4.2.4";
    public const string Sha256 = "2.16.840.1.101.3.4.2.1";
    public const string Sha384 = "2.16.840.1.101.3.4.2.2";
    public const string Sha512 = "2.16.840.1.101.3.4.2.3";

    // Content encryption (RFC 3565, RFC 5084, RFC 8103, RFC 3370, RFC 3657, RFC 4010, RFC 2984, RFC 8018)
    public const string DesCbc = "1.3.14.3.2.7";
    public const string DesEde3Cbc = "1.2.840.113549.3.7";
    public const string Rc2Cbc = "1.2.840.113549.3.2";
    public const string Cast5Cbc = "1.2.840.113533.7.66.10";
    public const string SeedCbc = "1.2.410.200004.1.4";
    public const string Camellia128Cbc = "1.2.392.200011.61.1.1.1.2";
    public const string Camellia192Cbc = "1.2.392.200011.61.1.1.1.3";
    public const string Camellia256Cbc = "1.2.392.200011.61.1.1.1.4";
    public const string Aes128Ofb = "2.16.840.1.101.3.4.1.3";
    public const string Aes128Cfb = "2.16.840.1.101.3.4.1.4";
    public const string Aes192Ofb = "2.16.840.1.101.3.4.1.23";
    public const string Aes192Cfb = "2.16.840.1.101.3.4.1.24";
    public const string Aes256Ofb = "2.16.840.1.101.3.4.1.43";
    public const string Aes256Cfb = "2.16.840.1.101.3.4.1.44";
    public const string Aes128Cbc = "2.16.840.1.101.3.4.1.2";
    public const string Aes192Cbc = "2.16.840.1.101.3.4.1.22";
    public const string Aes256Cbc = "2.16.840.1.101.3.4.1.42";
    public const string Aes128Gcm = "2.16.840.1.101.3.4.1.6";
    public const string Aes192Gcm = "2.16.840.1.101.3.4.1.26";
    public const string Aes256Gcm = "2.16.840.1.101.3.4.1.46";
    public const string Aes128Ccm = "2.16.840.1.101.3.4.1.7";
    public const string Aes192Ccm = "2.16.840.1.101.3.4.1.27";
    public const string Aes256Ccm = "2.16.840.1.101.3.4.1.47";
    public const string ChaCha20Poly1305 = "1.2.840.113549.1.9.16.3.18";

    // Key wrap (RFC 3394, RFC 5649)
    public const string Aes128Wrap = "2.16.840.1.101.3.4.1.5";
    public const string Aes192Wrap = "2.16.840.1.101.3.4.1.25";
    public const string Aes256Wrap = "2.16.840.1.101.3.4.1.45";
    public const string Aes128WrapPad = "2.16.840.1.101.3.4.1.8";
    public const string Aes192WrapPad = "2.16.840.1.101.3.4.1.28";
    public const string Aes256WrapPad = "2.16.840.1.101.3.4.1.48";

    // Triple-DES key wrap (RFC 3217; RFC 3370 §4.3.1)
    public const string Cms3DesWrap = "1.2.840.113549.1.9.16.3.6";

    // ECDH key agreement schemes (RFC 5753 §7.1.4; SEC 1)
    public const string EcPublicKey = "1.2.840.10045.2.1";
    public const string DhSinglePassStdDhSha1Kdf = "1.3.133.16.840.63.0.2";
    public const string DhSinglePassStdDhSha224Kdf = "1.3.132.1.11.0";
    public const string DhSinglePassStdDhSha256Kdf = "1.3.132.1.11.1";
    public const string DhSinglePassStdDhSha384Kdf = "1.3.132.1.11.2";
    public const string DhSinglePassStdDhSha512Kdf = "1.3.132.1.11.3";
    public const string DhSinglePassCofactorDhSha1Kdf = "1.3.133.16.840.63.0.3";
    public const string DhSinglePassCofactorDhSha224Kdf = "1.3.132.1.14.0";
    public const string DhSinglePassCofactorDhSha256Kdf = "1.3.132.1.14.1";
    public const string DhSinglePassCofactorDhSha384Kdf = "1.3.132.1.14.2";
    public const string DhSinglePassCofactorDhSha512Kdf = "1.3.132.1.14.3";

    // Named curves
    public const string Secp256r1 = "1.2.840.10045.3.1.7";
    public const string Secp384r1 = "1.3.132.0.34";
    public const string Secp521r1 = "1.3.132.0.35";

    /// <summary>The project's UUID arc (ITU-T X.667): 2.25.&lt;UUID eab14c93-b578-4932-9c29-c0272fae6637 as an integer&gt;.
    /// Minted once for MilterSecureList on 2026-11-21 (random v4 UUID); see docs/double-wrap.md.</summary>
    public const string ProjectArc = "2.25.311959940723462949415910998726157428279";

    /// <summary>oriType of the double-wrap OtherRecipientInfo (docs/double-wrap.md).</summary>
    public const string DoubleWrapOri = ProjectArc + ".1";

    /// <summary>The key-release arc (docs/key-release.md §2): <c>id-msl-keyRelease</c>.</summary>
    public const string KeyReleaseArc = ProjectArc + ".3";

    /// <summary>oriType of the key-release OtherRecipientInfo.</summary>
    public const string KeyReleaseOri = KeyReleaseArc + ".1";

    /// <summary>eContentType of a member's signed release request.</summary>
    public const string KeyReleaseRequest = KeyReleaseArc + ".2";

    /// <summary>eContentType of a key server's signed receipt.</summary>
    public const string KeyReleaseReceipt = KeyReleaseArc + ".3";
}
