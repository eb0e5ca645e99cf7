using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Admin.Tests;
using MilterSecureList.Directory;

namespace MilterSecureList.Gateway.Tests;

/// <summary>
/// EC gateway users (P-256, P-384): what the gateway signs for one verifies with openssl (ECDSA SignerInfo, our
/// EC capabilities), mail openssl encrypts to one (KeyAgreeRecipientInfo, ephemeral-static ECDH) is decrypted,
/// and an RSA user's mail to an EC correspondent is encrypted so openssl decrypts it.
/// </summary>
public sealed class EcUserTests : IDisposable
{
    private const string EcdsaWithSha256 = "1.2.840.10045.4.3.2";

    private static readonly Lazy<ECDsa> s_p256 = new(() => ECDsa.Create(ECCurve.NamedCurves.nistP256));
    private static readonly Lazy<ECDsa> s_p384 = new(() => ECDsa.Create(ECCurve.NamedCurves.nistP384));

    private readonly GatewayWorld _world = new();

    public void Dispose() => _world.Dispose();

    /// <summary>An EC gateway user imported from PEM files (as <c>securelist user import --cert --key</c> does).</summary>
    private Party EcUser(string address, string curve)
    {
        Party user = _world.Issue(address, curve == "P-384" ? s_p384.Value : s_p256.Value);
        _world.Administration.Import(user.Address, user.CertFile, user.KeyFile, null, false, null, null, null).Dispose();
        return user;
    }

    public static TheoryData<string, bool> CurvesAndForms => new() { { "P-256", false }, { "P-256", true }, { "P-384", false } };

    [Theory]
    [MemberData(nameof(CurvesAndForms))]
    public void WhatTheGatewaySignsForAnEcUserVerifiesWithOpenssl(string curve, bool opaque)
    {
        Party erin = EcUser("erin@gw.example", curve);
        _world.Store.SetUserPolicy(erin.Address, null, null, opaque);
        (GatewayResult result, byte[] output, _) = _world.Run(erin.Address, ["bob@partner.example"],
            GatewayWorld.PlainMessage(erin.Address, "bob@partner.example", "signed with an elliptic curve"));
        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.Contains(opaque ? "signed (opaque)" : "signed (multipart/signed)", result.Reason, StringComparison.Ordinal);

        string content = _world.Temp.File($"{Guid.NewGuid():N}.txt");
        (int code, _, string error) = OpensslTool.TryRun("cms", "-verify", "-in", _world.Write(output), "-CAfile", _world.CaFile, "-out", content);
        Assert.True(code == 0, "openssl cms -verify: " + error);
        Assert.Contains("signed with an elliptic curve", File.ReadAllText(content), StringComparison.Ordinal);

        // The SignerInfo is ECDSA, and the capabilities offer ECDH key agreement, not RSA key transport.
        SignerInfo signer = Assert.Single(SignedDataOf(output, opaque).SignerInfos.Cast<SignerInfo>());
        Assert.Equal(EcdsaWithSha256, signer.SignatureAlgorithm.Value);
        byte[] capabilities = signer.SignedAttributes.Cast<CryptographicAttributeObject>()
            .Single(a => a.Oid.Value == SmimeCapabilities.AttributeOid).Values[0].RawData;
        SmimeCapabilities announced = SmimeCapabilities.TryDecode(capabilities)!;
        Assert.True(announced.Supports(SmimeCapabilities.EcdhStdSha256Kdf));
        Assert.False(announced.Supports(SmimeCapabilities.RsaEncryption));
        Assert.False(announced.Supports(SmimeCapabilities.RsaesOaep));
        Assert.Equal(SmimeCapabilities.OursEc, capabilities);
    }

    [Fact]
    public void TheEcdhCapabilityCarriesTheKeyWrapAlgorithm_FixedValue()
    {
        // RFC 5753 §8: the key-agreement capability names its key-wrap algorithm in the parameters. Written out by
        // hand: SEQUENCE { OID 1.3.132.1.11.1, SEQUENCE { OID 2.16.840.1.101.3.4.1.45 (id-aes256-wrap) } }.
        byte[] expected = Convert.FromHexString("301506062B8104010B01300B060960864801650304012D");
        var reader = new AsnReader(SmimeCapabilities.OursEc, AsnEncodingRules.DER).ReadSequence();
        byte[] last = [];
        while (reader.HasData)
        {
            last = reader.ReadEncodedValue().ToArray();
        }

        Assert.Equal(expected, last);
    }

    public static TheoryData<string, string> CurvesAndKdfs => new() { { "P-256", "sha1" }, { "P-256", "sha256" }, { "P-384", "sha384" } };

    [Theory]
    [MemberData(nameof(CurvesAndKdfs))]
    public void MailOpensslEncryptsToAnEcUserIsDecrypted(string curve, string kdf)
    {
        Party erin = EcUser("erin@gw.example", curve);
        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nThe vault code is 4711.\r\n"));
        byte[] message = _world.OpensslMessage($"From: bob@partner.example\nTo: {erin.Address}\nSubject: ec inbound\nMessage-ID: <ec1@partner.example>\n",
            "cms", "-encrypt", "-aes256", "-in", entity, "-recip", erin.CertFile, "-keyopt", "ecdh_kdf_md:" + kdf);
        Assert.DoesNotContain("vault code", Encoding.ASCII.GetString(message), StringComparison.Ordinal);
        string printed = OpensslTool.Run("cms", "-cmsout", "-print", "-in", _world.Write(message));
        Assert.Contains("d.kari:", printed, StringComparison.Ordinal); // a KeyAgreeRecipientInfo
        Assert.Contains($"dhSinglePass-stdDH-{kdf}kdf-scheme", printed, StringComparison.Ordinal);

        (GatewayResult result, byte[] output, _) = _world.Run("bob@partner.example", [erin.Address], message);
        Assert.Equal("decrypted for erin@gw.example", result.Reason);
        Assert.Contains("The vault code is 4711.", Encoding.ASCII.GetString(output), StringComparison.Ordinal);
        Assert.DoesNotContain("pkcs7-mime", Encoding.ASCII.GetString(output), StringComparison.Ordinal);
    }

    [Fact]
    public void AnEcUserDecryptsNothingAddressedToAnotherKeyAndTamperedKeyAgreementLooksLikeAnyFailure()
    {
        Party erin = EcUser("erin@gw.example", "P-256");
        string entity = _world.Write(Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nsecret\r\n"));
        Party other = _world.Issue("erin@gw.example", s_p384.Value);
        byte[] toOther = _world.OpensslMessage($"From: bob@partner.example\nTo: {erin.Address}\nSubject: x\n", "cms", "-encrypt", "-aes256", "-in", entity, "-recip", other.CertFile);
        (GatewayResult result, _, _) = _world.Run("bob@partner.example", [erin.Address], toOther);
        Assert.Contains("left encrypted: not encrypted to erin@gw.example's certificate", result.Reason, StringComparison.Ordinal);

        // The same certificate but a wrong ephemeral point: the message stays as it came, like any decryption failure.
        byte[] der = OpensslDer("cms", "-encrypt", "-aes256", "-in", entity, "-recip", erin.CertFile);
        int point = IndexOfEphemeralPoint(der);
        der[point + 20] ^= 0x01;
        byte[] tampered = Encoding.ASCII.GetBytes($"From: bob@partner.example\r\nTo: {erin.Address}\r\nSubject: x\r\nMIME-Version: 1.0\r\n" +
            "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n" + Convert.ToBase64String(der, Base64FormattingOptions.InsertLineBreaks) + "\r\n");
        (result, byte[] output, _) = _world.Run("bob@partner.example", [erin.Address], tampered);
        Assert.Equal(GatewayVerdict.Continue, result.Verdict);
        Assert.StartsWith("left encrypted: cannot decrypt", result.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", Encoding.ASCII.GetString(output), StringComparison.Ordinal);
    }

    [Fact]
    public void AnRsaUsersMailToAnEcCorrespondentIsEncryptedByKeyAgreementThatOpensslDecrypts()
    {
        Party dave = _world.Issue("dave@partner.example", s_p256.Value);
        _world.Know(dave);
        (GatewayResult result, byte[] output, _) = _world.Run("alice@gw.example", [dave.Address],
            GatewayWorld.PlainMessage("alice@gw.example", dave.Address, "for an EC correspondent"));
        Assert.Contains("encrypted to 1 recipient(s) (AES-256-CBC, ECDH)", result.Reason, StringComparison.Ordinal);
        Assert.Contains(_world.Log.Lines, l => l.Contains("key-transport=ecdh-es", StringComparison.Ordinal));
        Assert.Contains("for an EC correspondent", _world.DecryptAndVerify(output, dave), StringComparison.Ordinal);
    }

    [Fact]
    public void AnEcCertificateThatCannotBothSignAndAgreeKeysIsRefusedAtImport()
    {
        Party signOnly = _world.Issue("frank@gw.example", s_p256.Value, keyUsage: X509KeyUsageFlags.DigitalSignature);
        DirectoryException e = Assert.Throws<DirectoryException>(() => _world.Administration.Import(signOnly.Address, signOnly.CertFile, signOnly.KeyFile, null, false, null, null, null));
        Assert.Contains("must allow digitalSignature and keyAgreement", e.Message, StringComparison.Ordinal);
        Assert.Null(_world.Directory.FindUser(signOnly.Address));
    }

    private SignedCms SignedDataOf(byte[] message, bool opaque)
    {
        string text = Encoding.ASCII.GetString(message);
        string marker = opaque ? "smime-type=signed-data" : "Content-Type: application/pkcs7-signature";
        int at = text.IndexOf(marker, StringComparison.Ordinal);
        int body = text.IndexOf("\r\n\r\n", at, StringComparison.Ordinal) + 4;
        int end = opaque ? text.Length : text.IndexOf("\r\n--", body, StringComparison.Ordinal);
        var cms = new SignedCms();
        cms.Decode(Convert.FromBase64String(text[body..end].Replace("\r\n", string.Empty, StringComparison.Ordinal)));
        return cms;
    }

    private byte[] OpensslDer(params string[] args)
    {
        string output = _world.Temp.File($"{Guid.NewGuid():N}.der");
        OpensslTool.Run([.. args, "-outform", "DER", "-out", output]);
        return File.ReadAllBytes(output);
    }

    /// <summary>Offset of the originator's uncompressed P-256 point (04 || X || Y) in a kari: the first BIT STRING of 66
    /// bytes holding one (the originatorKey's publicKey; nothing before it in the EnvelopedData looks like that).</summary>
    private static int IndexOfEphemeralPoint(byte[] der)
    {
        int at = der.AsSpan().IndexOf(Convert.FromHexString("03420004"));
        Assert.True(at > 0, "no P-256 originator key in the kari");
        return at + 3;
    }
}
