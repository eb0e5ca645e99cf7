using FsCheck;
using FsCheck.Fluent;

namespace MilterSecureList.Mime.Tests;

public class ContentTypeTests
{
    [Fact]
    public void ParsesTypeSubtypeAndParameters()
    {
        // The exact header openssl cms 3.0 writes (see docs/cms.md §9).
        Assert.True(ContentType.TryParse("application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"", out var ct));
        Assert.Equal("application", ct.MediaType);
        Assert.Equal("pkcs7-mime", ct.MediaSubtype);
        Assert.Equal("enveloped-data", ct.GetParameter("smime-type"));
        Assert.Equal("smime.p7m", ct.GetParameter("name"));
        Assert.Equal(2, ct.Parameters.Count);
    }

    [Fact]
    public void NamesAreCaseInsensitiveAndValuesKeepTheirCase()
    {
        Assert.True(ContentType.TryParse("APPLICATION/X-PKCS7-MIME; SMIME-TYPE=AuthEnveloped-DATA; Name=Smime.P7M", out var ct));
        Assert.Equal("application/x-pkcs7-mime", ct.MimeType);
        Assert.True(ct.IsMimeType("Application", "X-PKCS7-Mime"));
        Assert.Equal("AuthEnveloped-DATA", ct.GetParameter("smime-type"));
        Assert.Equal("Smime.P7M", ct.GetParameter("NAME"));
    }

    [Fact]
    public void SkipsNestedCommentsAndWhiteSpace()
    {
        Assert.True(ContentType.TryParse(
            " application (the (nested) type) / pkcs7-mime (x) ; smime-type = enveloped-data (comment \\) still) ;name=a.p7m;",
            out var ct));
        Assert.Equal("application/pkcs7-mime", ct.MimeType);
        Assert.Equal("enveloped-data", ct.GetParameter("smime-type"));
        Assert.Equal("a.p7m", ct.GetParameter("name"));
    }

    [Fact]
    public void QuotedStringsKeepSpecialsAndUnescapeQuotedPairs()
    {
        Assert.True(ContentType.TryParse("text/plain; name=\"a \\\"b\\\"; c=d (e)\"; x=1", out var ct));
        Assert.Equal("a \"b\"; c=d (e)", ct.GetParameter("name"));
        Assert.Equal("1", ct.GetParameter("x"));
    }

    [Theory]
    [InlineData("application/pkcs7-mime;\n\tsmime-type=enveloped-data;\n name=\"smime.p7m\"")] // Postfix milter HEADER: LF only
    [InlineData("application/pkcs7-mime;\r\n\tsmime-type=enveloped-data;\r\n name=\"smime.p7m\"")]
    [InlineData("application/pkcs7-mime; smime-type=\"enveloped-\r\n data\"; name=\"smime.p7m\"")]
    public void AcceptsFoldedValues(string value)
    {
        Assert.True(ContentType.TryParse(value, out var ct));
        Assert.Equal("application/pkcs7-mime", ct.MimeType);
        Assert.StartsWith("enveloped-", ct.GetParameter("smime-type"), StringComparison.Ordinal);
        Assert.Equal("smime.p7m", ct.GetParameter("name"));
    }

    [Fact]
    public void JoinsRfc2231ContinuationsWithCharsetAndPercentEncoding()
    {
        // The example of RFC 2231 §4.1.
        const string value = "application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; " +
            "title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"";
        Assert.True(ContentType.TryParse(value, out var ct));
        Assert.Equal("This is even more ***fun*** isn't it!", ct.GetParameter("title"));
    }

    [Fact]
    public void DecodesRfc2231Utf8AndPrefersItOverThePlainParameter()
    {
        Assert.True(ContentType.TryParse("application/pkcs7-mime; name=\"fallback.p7m\"; name*=UTF-8'fr'%C3%A9t%C3%A9.p7m", out var ct));
        Assert.Equal("\u00e9t\u00e9.p7m", ct.GetParameter("name"));
    }

    [Fact]
    public void Rfc2231ContinuationsMayArriveOutOfOrderAndStopAtAGap()
    {
        Assert.True(ContentType.TryParse("application/pkcs7-mime; smime-type*1=oped-data; smime-type*0=envel; smime-type*3=junk", out var ct));
        Assert.Equal("enveloped-data", ct.GetParameter("smime-type"));
    }

    [Fact]
    public void UnknownRfc2231CharsetFallsBackToLatin1()
    {
        Assert.True(ContentType.TryParse("a/b; p*=x-unknown-cs''%E9", out var ct));
        Assert.Equal("\u00e9", ct.GetParameter("p"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("application")]
    [InlineData("application/")]
    [InlineData("/pkcs7-mime")]
    [InlineData("application/pkcs7-mime smime-type=enveloped-data")]
    [InlineData("application/pkcs7-mime; =x")]
    [InlineData("application/pkcs7-mime; name")]
    [InlineData("application/pkcs7-mime; name=\"unterminated")]
    [InlineData("application/pkcs7-mime (unterminated comment")]
    [InlineData("appli\u00e9cation/x")]
    public void RejectsMalformedValues(string value)
    {
        Assert.False(ContentType.TryParse(value, out var ct));
        Assert.Null(ct);
        var ex = Assert.Throws<MimeFormatException>(() => ContentType.Parse(value));
        Assert.Equal(MimeErrorReason.InvalidContentType, ex.Reason);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void DeeplyNestedCommentsAreRejectedNotRecursed()
    {
        string value = "a/b " + new string('(', 100_000) + new string(')', 100_000);
        Assert.False(ContentType.TryParse(value, out _));
    }

    [Fact]
    public void TryParseNeverThrows_Property()
    {
        Gen<string> chars = Gen.Elements("ab/;=\"\\()*' \t\r\n%0'é".ToCharArray()).ArrayOf().Select(a => new string(a));
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(2000),
            Prop.ForAll(Arb.From(chars), s =>
            {
                _ = ContentType.TryParse(s, out _);
                _ = ContentDisposition.TryParse(s, out _);
                _ = SmimeClassifier.Classify(s, s, s);
                return true;
            }));
    }

    [Fact]
    public void FormattedParametersParseBack_Property()
    {
        Gen<string> token = Gen.Elements("abcXYZ019-.+_".ToCharArray()).NonEmptyListOf().Select(l => new string(l.ToArray()));
        Gen<string> value = Gen.Elements("abc XYZ;=\"\\()/,:@é\t".ToCharArray()).ArrayOf().Select(a => new string(a));
        Gen<(string, string, string[], string[])> gen =
            from type in token
            from subtype in token
            from names in token.Select(t => "p" + t).ListOf()
            from values in value.ArrayOf(names.Count)
            select (type, subtype, names.Distinct(StringComparer.OrdinalIgnoreCase).ToArray(), values);
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(500),
            Prop.ForAll(Arb.From(gen), t =>
            {
                var (type, subtype, names, values) = t;
                string text = type + "/" + subtype + string.Concat(names.Select((n, i) =>
                    "; " + n + "=\"" + values[i].Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\""));
                Assert.True(ContentType.TryParse(text, out var ct), text);
                Assert.Equal(type.ToLowerInvariant() + "/" + subtype.ToLowerInvariant(), ct.MimeType);
                for (int i = 0; i < names.Length; i++)
                {
                    Assert.Equal(values[i], ct.GetParameter(names[i]));
                }

                // ToString is parseable and equivalent.
                Assert.True(ContentType.TryParse(ct.ToString(), out var again));
                Assert.Equal(ct.Parameters.OrderBy(p => p.Key), again.Parameters.OrderBy(p => p.Key));
                return true;
            }));
    }

    [Fact]
    public void ParsesContentDisposition()
    {
        Assert.True(ContentDisposition.TryParse("Attachment;\n filename*0=\"smime\"; filename*1=\".p7m\"", out var cd));
        Assert.Equal("attachment", cd.Disposition);
        Assert.Equal("smime.p7m", cd.FileName);
    }
}
