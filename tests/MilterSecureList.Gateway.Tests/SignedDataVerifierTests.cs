using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Cms;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// The gateway's own SignerInfo check (SignedDataVerifier) against .NET's SignedCms and openssl on the same bytes:
/// signatures made by SignedCms (RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA, subject key identifier) and SignedData built
/// here field by field to reach the edge cases a sender controls: the message digest, the signed attributes and
/// their order, the algorithms, the certificate.
/// </summary>
public sealed class SignedDataVerifierTests : IDisposable
{
    private const string ContentType = "1.2.840.113549.1.9.3";
    private const string MessageDigest = "1.2.840.113549.1.9.4";
    private const string SigningTime = "1.2.840.113549.1.9.5";
    private static readonly byte[] s_content = Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nMeet me at noon.\r\n");
    private readonly GatewayWorld _world = new();
    private readonly CertificateCache _cache = new();

    public void Dispose() => _world.Dispose();

    public static TheoryData<string, bool> SignedCmsCases => new()
    {
        { "RSA PKCS#1 v1.5", true }, { "RSA PKCS#1 v1.5", false }, { "RSASSA-PSS", true }, { "RSASSA-PSS", false },
        { "ECDSA P-256 SHA-384", true }, { "ECDSA P-256 SHA-384", false }, { "subject key identifier", true }, { "SHA-1", true },
    };

    [Theory]
    [MemberData(nameof(SignedCmsCases))]
    public void WhatSignedCmsSignsVerifiesHereAndInOpenssl(string kind, bool detached)
    {
        using ECDsa ecKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Party signer = kind.StartsWith("ECDSA", StringComparison.Ordinal)
            ? _world.Issue("dave@partner.example", ecKey, keyUsage: X509KeyUsageFlags.DigitalSignature)
            : _world.Bob;
        var cms = new SignedCms(new ContentInfo(s_content), detached);
        CmsSigner cmsSigner = kind == "RSASSA-PSS"
            ? new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, signer.Certificate, (RSA)signer.Key, RSASignaturePadding.Pss)
            : new CmsSigner(kind == "subject key identifier" ? SubjectIdentifierType.SubjectKeyIdentifier : SubjectIdentifierType.IssuerAndSerialNumber, signer.Certificate, signer.Key);
        cmsSigner.DigestAlgorithm = new Oid(kind switch { "SHA-1" => Oids.Sha1, "ECDSA P-256 SHA-384" => Oids.Sha384, _ => Oids.Sha256 });
        cmsSigner.SignedAttributes.Add(new Pkcs9SigningTime(DateTime.UtcNow));
        cms.ComputeSignature(cmsSigner, silent: true);
        byte[] encoded = cms.Encode();

        SignedDataCheck check = Ours(encoded, detached);
        Assert.True(check.Problem is null, check.Detail);
        Assert.Equal(signer.Certificate.RawData, check.Signer!.RawData);
        if (!detached)
        {
            Assert.Equal(s_content, check.Content!.Value.ToArray());
        }

        Assert.True(SignedCmsAccepts(encoded, detached));
        // openssl finds a signer named by key identifier only through the certificate's extension, which the test
        // certificates do not carry (SignedCms, and ours, then use the SHA-1 of the key, as SignedCms wrote it).
        Assert.Equal(kind != "subject key identifier", OpensslAccepts(encoded, detached));
    }

    /// <summary>Crafted SignedData: (description, whether ours, SignedCms and openssl accept it). Where they differ:
    /// SignedCms alone also accepts attributes sent unsorted but signed in DER order (it tries a sorted copy); ours
    /// and openssl check the attributes as sent. openssl alone accepts a signature algorithm whose hash is not the
    /// digest algorithm. Both accept a content-type attribute that names another type; RFC 5652 §11.1 says it must
    /// match, and ours refuses it.</summary>
    public static TheoryData<string, string> CraftedCases => new()
    {
        { "well formed", "ours True, SignedCms True, openssl True" },
        { "well formed, ECDSA", "ours True, SignedCms True, openssl True" },
        { "well formed, SHA-512", "ours True, SignedCms True, openssl True" },
        { "no signed attributes", "ours True, SignedCms True, openssl True" },
        { "message digest of other content", "ours False, SignedCms False, openssl False" },
        { "signing time changed after signing", "ours False, SignedCms False, openssl False" },
        { "content altered", "ours False, SignedCms False, openssl False" },
        { "signed with another key", "ours False, SignedCms False, openssl False" },
        { "unsorted attributes, signed as sent", "ours True, SignedCms True, openssl True" },
        { "unsorted attributes, signed in DER order", "ours False, SignedCms True, openssl False" },
        { "signature algorithm hash is not the digest algorithm", "ours False, SignedCms False, openssl True" },
        { "content-type attribute names another type", "ours False, SignedCms True, openssl True" },
    };

    [Theory]
    [MemberData(nameof(CraftedCases))]
    public void CraftedSignerInfosAreJudgedLikeSignedCmsAndOpenssl(string kind, string verdicts)
    {
        byte[] content = kind == "content altered" ? Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nMeet me at nine.\r\n") : s_content;
        byte[] encoded = Crafted(kind);

        SignedDataCheck ours = Ours(encoded, detached: true, content);
        Assert.Equal(verdicts, $"ours {ours.Problem is null}, SignedCms {SignedCmsAccepts(encoded, detached: true, content)}, openssl {OpensslAccepts(encoded, detached: true, content)}");
        Assert.Equal(ours.Problem is null ? null : SignedDataProblem.Mismatch, ours.Problem);
    }

    [Fact]
    public void AttributesRfc5652RequiresAreRequiredHereEvenWhereSignedCmsIsLenient()
    {
        // RFC 5652 §5.3: content-type and message-digest must both be present, each once with one value
        // (SignedCms accepts both of these).
        foreach (string kind in (string[])["no content-type attribute", "message digest twice"])
        {
            SignedDataCheck check = Ours(Crafted(kind), detached: true);
            Assert.Equal(SignedDataProblem.Mismatch, check.Problem);
        }

        Assert.Contains("no content-type attribute", Ours(Crafted("no content-type attribute"), detached: true).Detail, StringComparison.Ordinal);
        Assert.Contains("more than once", Ours(Crafted("message digest twice"), detached: true).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedOrIncompleteSignedDataIsNamed()
    {
        byte[] good = Crafted("well formed");
        Assert.Equal(SignedDataProblem.Unreadable, Ours(good[..^10], detached: true).Problem);
        Assert.Equal(SignedDataProblem.Unreadable, Ours("not DER at all"u8.ToArray(), detached: true).Problem);
        Assert.Equal(SignedDataProblem.NoCertificate, Ours(Crafted("no certificates"), detached: true).Problem);
        Assert.Equal(SignedDataProblem.NoSigner, Ours(Crafted("no signer"), detached: true).Problem);
        // A certificate that is not one is left out: the signer then has none.
        Assert.Equal(SignedDataProblem.NoCertificate, Ours(Crafted("junk certificate"), detached: true).Problem);
    }

    private SignedDataCheck Ours(byte[] encoded, bool detached, byte[]? content = null) =>
        SignedDataVerifier.Verify(encoded, detached ? content ?? s_content : (ReadOnlyMemory<byte>?)null, _cache.Get);

    private static bool SignedCmsAccepts(byte[] encoded, bool detached, byte[]? content = null)
    {
        try
        {
            var cms = new SignedCms(new ContentInfo(content ?? s_content), detached);
            cms.Decode(encoded);
            cms.CheckSignature(verifySignatureOnly: true);
            return true;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private bool OpensslAccepts(byte[] encoded, bool detached, byte[]? content = null)
    {
        string der = _world.Write(encoded, "sig.der");
        string[] args = ["cms", "-verify", "-binary", "-noverify", "-inform", "DER", "-in", der, "-out", _world.Temp.File($"{Guid.NewGuid():N}.out")];
        return OpensslTool.TryRun(detached ? [.. args, "-content", _world.Write(content ?? s_content, "content.txt")] : args).Code == 0;
    }

    /// <summary>A detached SignedData over the test content, by Bob unless the case says otherwise, built field by field.</summary>
    private byte[] Crafted(string kind)
    {
        using ECDsa ecKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Party signer = kind.Contains("ECDSA", StringComparison.Ordinal)
            ? _world.Issue("dave@partner.example", ecKey, keyUsage: X509KeyUsageFlags.DigitalSignature)
            : _world.Bob;
        HashAlgorithmName hash = kind.Contains("SHA-512", StringComparison.Ordinal) ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256;
        string digestOid = hash == HashAlgorithmName.SHA512 ? Oids.Sha512 : Oids.Sha256;
        byte[] digest = CryptographicOperations.HashData(hash, kind == "message digest of other content" ? "other"u8 : s_content);

        byte[] contentType = Attribute(ContentType, w => w.WriteObjectIdentifier(kind == "content-type attribute names another type" ? Oids.EnvelopedData : Oids.Data));
        byte[] messageDigest = Attribute(MessageDigest, w => w.WriteOctetString(digest));
        byte[] signingTime = Attribute(SigningTime, w => w.WriteUtcTime(new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero)));
        List<byte[]> attributes = kind switch
        {
            "no signed attributes" => [],
            "no content-type attribute" => [messageDigest, signingTime],
            "message digest twice" => [contentType, messageDigest, messageDigest, signingTime],
            _ => [contentType, messageDigest, signingTime],
        };
        List<byte[]> sorted = [.. attributes.Order(Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b)))];
        List<byte[]> sent = kind.StartsWith("unsorted", StringComparison.Ordinal) ? [.. sorted.AsEnumerable().Reverse()] : sorted;
        Assert.True(!kind.StartsWith("unsorted", StringComparison.Ordinal) || !sent.SequenceEqual(sorted));
        byte[] signedAttributes = Tlv(0x31, [.. (kind == "unsorted attributes, signed as sent" ? sent : sorted).SelectMany(a => a)]);

        byte[] toSign = attributes.Count == 0 ? s_content : signedAttributes;
        AsymmetricAlgorithm key = kind == "signed with another key" ? _world.Carol.Key : signer.Key;
        byte[] signature = key is ECDsa ec
            ? ec.SignData(toSign, hash, DSASignatureFormat.Rfc3279DerSequence)
            : ((RSA)key).SignData(toSign, hash, RSASignaturePadding.Pkcs1);
        string signatureAlgorithm = key is ECDsa ? "1.2.840.10045.4.3.2"
            : kind == "signature algorithm hash is not the digest algorithm" ? "1.2.840.113549.1.1.12" : Oids.RsaEncryption;

        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(Oids.SignedData);
            using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            using (w.PushSequence())
            {
                w.WriteInteger(1);
                using (w.PushSetOf())
                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(digestOid);
                }

                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(Oids.Data);
                }

                if (kind == "junk certificate")
                {
                    w.WriteEncodedValue(Tlv(0xA0, [0x30, 0x03, 0x02, 0x01, 0x00]));
                }
                else if (kind != "no certificates")
                {
                    w.WriteEncodedValue(Tlv(0xA0, signer.Certificate.RawData));
                }

                using (w.PushSetOf())
                {
                    if (kind != "no signer")
                    {
                        using (w.PushSequence())
                        {
                            w.WriteInteger(1);
                            using (w.PushSequence())
                            {
                                w.WriteEncodedValue(signer.Certificate.IssuerName.RawData);
                                w.WriteInteger(signer.Certificate.SerialNumberBytes.Span);
                            }

                            using (w.PushSequence())
                            {
                                w.WriteObjectIdentifier(digestOid);
                            }

                            if (attributes.Count > 0)
                            {
                                w.WriteEncodedValue(Tlv(0xA0, [.. sent.SelectMany(a => a)]));
                            }

                            using (w.PushSequence())
                            {
                                w.WriteObjectIdentifier(signatureAlgorithm);
                            }

                            w.WriteOctetString(signature);
                        }
                    }
                }
            }
        }

        byte[] encoded = w.Encode();
        if (kind == "signing time changed after signing")
        {
            int at = encoded.AsSpan().IndexOf("260304050607Z"u8);
            encoded[at + 11] ^= 0x01;
        }

        return encoded;
    }

    private static byte[] Attribute(string oid, Action<AsnWriter> value)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(oid);
            using (w.PushSetOf())
            {
                value(w);
            }
        }

        return w.Encode();
    }

    /// <summary>TAG, a DER length and VALUE, written by hand so that an unsorted SET stays unsorted.</summary>
    private static byte[] Tlv(byte tag, byte[] value) => value.Length switch
    {
        < 0x80 => [tag, (byte)value.Length, .. value],
        < 0x100 => [tag, 0x81, (byte)value.Length, .. value],
        _ => [tag, 0x82, (byte)(value.Length >> 8), (byte)value.Length, .. value],
    };
}
