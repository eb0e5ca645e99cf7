using System.Diagnostics;
using System.Text;
using MimeKit;
using Xunit.Abstractions;

namespace MilterSecureList.Mime.Tests;

/// <summary>
/// Figures, not assertions on time: throughput of the body codec as the milter runs it (<see cref="SmimeBodyCodec"/>:
/// the base64 filters in a <see cref="MimeFilterReadStream"/>), of MimeKit's own base64 filters in the same stream, and
/// of System.Convert, on the same data in the same run; and the memory a large body needs. Run with
/// <c>dotnet test --filter Category=Benchmark --logger "console;verbosity=detailed"</c> to see the numbers.
/// The assertions check only that the outputs are right.
/// </summary>
[Trait("Category", "Benchmark")]
public class MimeThroughputBenchmark
{
    private const int Size = 32 * 1024 * 1024;
    private static readonly MimeHeader[] Headers =
    [
        new("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m"),
        new("Content-Transfer-Encoding", "base64"),
    ];

    private readonly ITestOutputHelper _output;

    public MimeThroughputBenchmark(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public void Base64DecodeAndEncodeThroughputAgainstSystemConvert()
    {
        var data = new byte[Size];
        new Random(1).NextBytes(data);
        string referenceText = Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks) + "\r\n";
        byte[] body = Encoding.ASCII.GetBytes(referenceText);

        // Best of 3 passes each: the CI machine is shared, single passes are noise.
        byte[] reference = [];
        ReadOnlyMemory<byte> decoded = default;
        string convertText = string.Empty;
        using var encoded = new MemoryStream(body.Length);
        double convertDecode = double.MaxValue, ourDecode = double.MaxValue, convertEncode = double.MaxValue, ourEncode = double.MaxValue;
        double mimeKitDecode = double.MaxValue, mimeKitEncode = double.MaxValue, filterDecode = double.MaxValue;
        using var mimeKitEncoded = new MemoryStream(body.Length);
        for (int pass = 0; pass < 3; pass++)
        {
            var sw = Stopwatch.StartNew();
            reference = Convert.FromBase64String(referenceText);
            convertDecode = Math.Min(convertDecode, sw.Elapsed.TotalSeconds);

            sw.Restart();
            decoded = SmimeBodyCodec.TryRead(Headers, new MemoryStream(body, writable: false))!.Cms;
            ourDecode = Math.Min(ourDecode, sw.Elapsed.TotalSeconds);

            sw.Restart();
            convertText = Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks);
            convertEncode = Math.Min(convertEncode, sw.Elapsed.TotalSeconds);

            encoded.SetLength(0);
            sw.Restart();
            using (Stream stream = SmimeBodyCodec.Encode(data, ContentEncoding.Base64))
            {
                stream.CopyTo(encoded, 65535); // REPLBODY chunk size
            }

            ourEncode = Math.Min(ourEncode, sw.Elapsed.TotalSeconds);

            sw.Restart();
            using (var stream = new MimeFilterReadStream(new MemoryStream(body, writable: false), new Base64DecoderFilter()))
            {
                stream.CopyTo(Stream.Null, 65536);
            }

            filterDecode = Math.Min(filterDecode, sw.Elapsed.TotalSeconds);

            sw.Restart();
            using (var stream = new MimeFilterReadStream(new MemoryStream(body, writable: false), MimeKit.IO.Filters.DecoderFilter.Create(ContentEncoding.Base64)))
            {
                stream.CopyTo(Stream.Null, 65536);
            }

            mimeKitDecode = Math.Min(mimeKitDecode, sw.Elapsed.TotalSeconds);

            mimeKitEncoded.SetLength(0);
            sw.Restart();
            using (var stream = new MimeFilterReadStream(new MemoryStream(data, writable: false), MimeKit.IO.Filters.EncoderFilter.Create(ContentEncoding.Base64), new MimeKit.IO.Filters.Unix2DosFilter()))
            {
                stream.CopyTo(mimeKitEncoded, 65535);
            }

            mimeKitEncode = Math.Min(mimeKitEncode, sw.Elapsed.TotalSeconds);
        }

        Assert.True(decoded.Span.SequenceEqual(reference));
        Assert.Equal(body, encoded.ToArray());
        Assert.Equal(body, mimeKitEncoded.ToArray());

        double mb = Size / (1024.0 * 1024.0);
        _output.WriteLine($"base64 decode {mb:F0} MiB: SmimeBodyCodec into a new CMS buffer {mb / ourDecode:F0} MiB/s; to Stream.Null: Base64DecoderFilter {mb / filterDecode:F0} MiB/s, MimeKit DecoderFilter {mb / mimeKitDecode:F0} MiB/s, ratio {mimeKitDecode / filterDecode:F2}; Convert.FromBase64String {mb / convertDecode:F0} MiB/s");
        _output.WriteLine($"base64 encode {mb:F0} MiB at 76 columns: SmimeBodyCodec {mb / ourEncode:F0} MiB/s; MimeKit EncoderFilter+Unix2Dos {mb / mimeKitEncode:F0} MiB/s; Convert.ToBase64String {mb / convertEncode:F0} MiB/s; codec/MimeKit {mimeKitEncode / ourEncode:F2}");
    }

    [Fact]
    public void MemoryForALargeBody()
    {
        var data = new byte[Size];
        new Random(2).NextBytes(data);
        using var body = new MemoryStream();
        SmimeBodyCodec.Write(data, ContentEncoding.Base64, body);
        body.Position = 0;

        long before = GC.GetAllocatedBytesForCurrentThread();
        SmimeBodyContent? content = SmimeBodyCodec.TryRead(Headers, body);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.NotNull(content);
        Assert.True(content.Cms.Span.SequenceEqual(data));
        _output.WriteLine($"decoding a {body.Length / 1048576.0:F1} MiB base64 body ({Size / 1048576} MiB CMS) allocated {allocated / 1048576.0:F1} MiB = {(double)allocated / Size:F2} x the CMS size");
    }
}
