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
/// the exact signed bytes (<see cref="SignedDataVerifier"/>), the signer's chain to the configured trust anchors at the current time, and the
/// signer certificate issued to the message's From address. Any failure is a reason, never an exception.
/// </summary>
public sealed class SmimeVerifier
{
    private readonly TrustAnchors _anchors;
    private readonly TimeProvider _time;
    private readonly CertificateCache _certificates;

    public SmimeVerifier(TrustAnchors anchors, TimeProvider time)
        : this(anchors, time, new CertificateCache())
    {
    }

    /// <summary>With the gateway's certificate cache: a correspondent's certificate (and its public key) is parsed once.</summary>
    internal SmimeVerifier(TrustAnchors anchors, TimeProvider time, CertificateCache certificates)
    {
        _anchors = anchors;
        _time = time;
        _certificates = certificates;
    }

    /// <summary>A detached signature (multipart/signed) over SIGNED.</summary>
    public SignatureCheck VerifyDetached(ReadOnlyMemory<byte> signed, ReadOnlyMemory<byte> signature, string? fromAddress) =>
        Verify(SignedDataVerifier.Verify(signature, signed, _certificates.Get), fromAddress);

    /// <summary>An encapsulating SignedData (application/pkcs7-mime; smime-type=signed-data).</summary>
    public SignatureCheck VerifyOpaque(ReadOnlyMemory<byte> signedData, string? fromAddress) =>
        Verify(SignedDataVerifier.Verify(signedData, null, _certificates.Get), fromAddress);

    private SignatureCheck Verify(SignedDataCheck cms, string? fromAddress)
    {
        switch (cms.Problem)
        {
            case SignedDataProblem.Unreadable:
                return SignatureCheck.Fail($"the signature is not a readable CMS SignedData ({OneLine(cms.Detail!)})");
            case SignedDataProblem.NoSigner:
                return SignatureCheck.Fail("the signature has no signer");
            case SignedDataProblem.NoCertificate:
                return SignatureCheck.Fail("the signer's certificate is not included in the signature");
            case SignedDataProblem.Mismatch:
                return SignatureCheck.Fail($"the signature does not match the content: the message was altered or the signature is forged ({OneLine(cms.Detail!)})");
        }

        // Chain and time are checked against our anchors, not the system store.
        X509Certificate2 signer = cms.Signer!;
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

        return new SignatureCheck(true, null, signer, cms.Capabilities, cms.Content?.ToArray());
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim().TrimEnd('.');
}
