using FsCheck;
using FsCheck.Fluent;
using MimeKit;

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
    [InlineData("application/pkcs7-mime;\r\n smime-type=enveloped-data;\r\n\tname=\"smime.p7m\"", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type*0=envel; smime-type*1=oped-data", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type=enveloped-data; name*=utf-8''%C3%A9t%C3%A9.p7m", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime (S/MIME) ; smime-type=\"enveloped-data\" (comment)", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type=enveloped-data (comment); name=smime.p7m", SmimeKind.EnvelopedData)]
    [InlineData("application/pkcs7-mime; smime-type=authEnveloped-data\t; name=smime.p7m", SmimeKind.AuthEnvelopedData)]
    [InlineData("application/x-pkcs7-mime; name*=iso-8859-1'en'r%E9sum%E9.p7m", SmimeKind.EnvelopedOrAuthEnveloped)]
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
    public void Rfc2231NamesAreDecodedBeforeTheExtensionIsLookedAt()
    {
        SmimeClassification result = SmimeClassifier.Classify("application/pkcs7-mime; name*0*=utf-8''%C3%A9t; name*1=\"\u00e9.p7m\"", null, null);
        Assert.Equal(SmimeKind.EnvelopedOrAuthEnveloped, result.Kind);
        Assert.Equal("\u00e9t\u00e9.p7m", result.ContentType!.Name);
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

    public static TheoryData<string?, ContentEncoding?> TransferEncodings() => new()
    {
        { null, ContentEncoding.Default },
        { "base64", ContentEncoding.Base64 },
        { " BASE64 ", ContentEncoding.Base64 },
        { "Base64 (the usual)", ContentEncoding.Base64 },
        { "\n\tbase64", ContentEncoding.Base64 },
        { "binary", ContentEncoding.Binary },
        { "8BIT", ContentEncoding.EightBit },
        { "7bit", ContentEncoding.SevenBit },
        { "quoted-printable", ContentEncoding.QuotedPrintable },
        { "x-uuencode", ContentEncoding.UUEncode },
        { "x-private-token", null },
        { "", null },
    };

    [Theory]
    [MemberData(nameof(TransferEncodings))]
    public void ReportsTheTransferEncoding(string? value, ContentEncoding? expected)
    {
        var headers = new List<MimeHeader> { new("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data") };
        if (value is not null)
        {
            headers.Add(new MimeHeader("Content-Transfer-Encoding", value));
        }

        Assert.Equal(expected, SmimeClassifier.Classify(headers).TransferEncoding);
    }

    [Fact]
    public void ClassifyNeverThrows_Property()
    {
        Gen<string> value = Gen.Elements("application/pkcs7-mime; smime-type=\"enveloped-data\"*0=''%;(\\)\r\n\t =\u00e9\u0000x".ToCharArray())
            .ListOf().Select(l => new string(l.ToArray()));
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(1000),
            Prop.ForAll(Arb.From(Gen.Zip(value, value)), t =>
            {
                SmimeClassification c = SmimeClassifier.Classify(t.Item1, t.Item2, t.Item1);
                return !string.IsNullOrEmpty(c.Reason);
            }));
    }
}
