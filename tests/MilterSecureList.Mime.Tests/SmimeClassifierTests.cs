namespace MilterSecureList.Mime.Tests;

public class SmimeClassifierTests
{
    [Theory]
    [InlineData("application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", SmimeKind.EnvelopedData)]
    [InlineData("application/x-pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"", SmimeKind.EnvelopedData)]
    [InlineData("Application/PKCS7-MIME; Smime-Type=ENVELOPED-DATA", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type=authEnveloped-data; name=\"smime.p7m\"", SmimeKind.AuthEnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type=AUTHENVELOPED-DATA", SmimeKind.AuthEnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type*=us-ascii''enveloped%2Ddata", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime;\n\tsmime-type=\"enveloped-data\"", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type=signed-data; name=smime.p7m", SmimeKind.SignedData)]
    [InlineData("application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z", SmimeKind.CompressedData)]
    [InlineData("application/pkcs7-mime; smime-type=certs-only; name=smime.p7c", SmimeKind.Unknown)]
    [InlineData("application/pkcs7-mime; name=smime.p7m", SmimeKind.EnvelopedOrAuthEnveloped)]
    [InlineData("application/x-pkcs7-mime; name*0=sm; name*1=ime.P7M", SmimeKind.EnvelopedOrAuthEnveloped)]
    [InlineData("application/pkcs7-mime", SmimeKind.Unknown)]
    [InlineData("application/octet-stream; name=smime.p7m", SmimeKind.EnvelopedOrAuthEnveloped)]
    [InlineData("application/octet-stream; name=report.pdf", SmimeKind.NotSmime)]
    [InlineData("multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=x", SmimeKind.SignedData)]
    [InlineData("text/plain; charset=us-ascii", SmimeKind.NotSmime)]
    [InlineData("garbage", SmimeKind.NotSmime)]
    public void ClassifiesByContentType(string contentType, SmimeKind expected)
    {
        SmimeClassification result = SmimeClassifier.Classify([new MimeHeader("Content-Type", contentType)]);
        Assert.Equal(expected, result.Kind);
        Assert.False(string.IsNullOrWhiteSpace(result.Reason));
        Assert.Equal(expected is SmimeKind.EnvelopedData or SmimeKind.AuthEnvelopedData or SmimeKind.EnvelopedOrAuthEnveloped, result.IsEncrypted);
    }

    [Fact]
    public void FallsBackToTheContentDispositionFileName()
    {
        SmimeClassification result = SmimeClassifier.Classify(
        [
            new MimeHeader("content-type", "application/pkcs7-mime"),
            new MimeHeader("CONTENT-DISPOSITION", "attachment; filename=\"smime.p7m\""),
        ]);
        Assert.Equal(SmimeKind.EnvelopedOrAuthEnveloped, result.Kind);
    }

    [Fact]
    public void NoContentTypeIsNotSmime()
    {
        SmimeClassification result = SmimeClassifier.Classify([new MimeHeader("Subject", "hello")]);
        Assert.Equal(SmimeKind.NotSmime, result.Kind);
        Assert.Null(result.ContentType);
    }

    [Fact]
    public void TheFirstContentTypeWins()
    {
        SmimeClassification result = SmimeClassifier.Classify(
        [
            new MimeHeader("Content-Type", "text/plain"),
            new MimeHeader("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data"),
        ]);
        Assert.Equal(SmimeKind.NotSmime, result.Kind);
    }

    [Theory]
    [InlineData(null, ContentTransferEncoding.None)]
    [InlineData("base64", ContentTransferEncoding.Base64)]
    [InlineData(" BASE64 ", ContentTransferEncoding.Base64)]
    [InlineData("Base64 (the usual)", ContentTransferEncoding.Base64)]
    [InlineData("\n\tbase64", ContentTransferEncoding.Base64)]
    [InlineData("binary", ContentTransferEncoding.Binary)]
    [InlineData("8BIT", ContentTransferEncoding.EightBit)]
    [InlineData("7bit", ContentTransferEncoding.SevenBit)]
    [InlineData("quoted-printable", ContentTransferEncoding.QuotedPrintable)]
    [InlineData("x-uuencode", ContentTransferEncoding.Other)]
    [InlineData("base64 base64", ContentTransferEncoding.Other)]
    public void ReportsTheTransferEncoding(string? value, ContentTransferEncoding expected)
    {
        var headers = new List<MimeHeader> { new("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data") };
        if (value is not null)
        {
            headers.Add(new MimeHeader("Content-Transfer-Encoding", value));
        }

        Assert.Equal(expected, SmimeClassifier.Classify(headers).TransferEncoding);
    }
}
