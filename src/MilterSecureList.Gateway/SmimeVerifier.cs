using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Directory;
using MilterSecureList.Directory.Gateway;

namespace MilterSecureList.Gateway;

/// <summary>The outcome of checking one S/MIME signature. On success <see cref="Signer"/> is the signer's certificate.</summary>
public sealed record SignatureCheck(bool Valid, string? Problem, X509Certificate2? Signer, byte[]? Capabilities, byte[]? EncapsulatedContent)
{
    public static SignatureCheck Fail(string problem) => new(false, problem, null, null, null);
}

/// <summary>
/// Verifies S/MIME signatures the way the gateway promises (docs/gateway.md, "Inbound"): the CMS signature over
/// the exact signed bytes, the signer's chain to the configured trust anchors at the current time, and the
/// signer certificate issued to the message's From address. Any failure is a reason, never an exception.
/// </summary>
public sealed class SmimeVerifier
{
    private readonly TrustAnchors _anchors;
    private readonly TimeProvider _time;

    public SmimeVerifier(TrustAnchors anchors, TimeProvider time)
    {
        _anchors = anchors;
        _time = time;
    }

    /// <summary>A detached signature (multipart/signed) over SIGNED.</summary>
    public SignatureCheck VerifyDetached(ReadOnlyMemory<byte> signed, ReadOnlyMemory<byte> signature, string? fromAddress) =>
        Verify(new SignedCms(new ContentInfo(signed.ToArray()), detached: true), signature, fromAddress);

    /// <summary>An encapsulating SignedData (application/pkcs7-mime; smime-type=signed-data).</summary>
    public SignatureCheck VerifyOpaque(ReadOnlyMemory<byte> signedData, string? fromAddress) =>
        Verify(new SignedCms(), signedData, fromAddress);

    private SignatureCheck Verify(SignedCms cms, ReadOnlyMemory<byte> encoded, string? fromAddress)
    {
        try
        {
            cms.Decode(encoded.Span);
        }
        catch (CryptographicException e)
        {
            return SignatureCheck.Fail($"the signature is not a readable CMS SignedData ({OneLine(e.Message)})");
        }

        if (cms.SignerInfos.Count == 0)
        {
            return SignatureCheck.Fail("the signature has no signer");
        }

        SignerInfo signerInfo = cms.SignerInfos[0];
        X509Certificate2? signer = signerInfo.Certificate;
        if (signer is null)
        {
            return SignatureCheck.Fail("the signer's certificate is not included in the signature");
        }

        try
        {
            // Every SignerInfo must hold; chain and time are checked below against our anchors, not the system store.
            cms.CheckSignature(verifySignatureOnly: true);
        }
        catch (CryptographicException e)
        {
            return SignatureCheck.Fail($"the signature does not match the content: the message was altered or the signature is forged ({OneLine(e.Message)})");
        }

        DateTimeOffset now = _time.GetUtcNow();
        if (_anchors.Verify(signer, cms.Certificates, now) is { } chainProblem)
        {
            return SignatureCheck.Fail($"signer certificate {signer.Subject}: {chainProblem}");
        }

        if (fromAddress is null)
        {
            return SignatureCheck.Fail("the message has no single From address to match the signer against");
        }

        if (!CertificateInspector.MatchesAddress(signer, fromAddress))
        {
            IReadOnlyList<string> names = CertificateInspector.GetEmailAddresses(signer);
            return SignatureCheck.Fail($"the signer's certificate is issued to {(names.Count == 0 ? "no mail address" : string.Join(", ", names))}, not to the From address {fromAddress}");
        }

        byte[]? capabilities = null;
        foreach (CryptographicAttributeObject attribute in signerInfo.SignedAttributes)
        {
            if (attribute.Oid.Value == SmimeCapabilities.AttributeOid && attribute.Values.Count > 0)
            {
                capabilities = attribute.Values[0].RawData;
            }
        }

        return new SignatureCheck(true, null, signer, capabilities, cms.Detached ? null : cms.ContentInfo.Content);
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim().TrimEnd('.');
}
