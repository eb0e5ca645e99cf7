using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace MilterSecureList.Mime.Tests;

public class Base64LineWriterTests
{
    // Reference: System.Convert's MIME mode (76 characters, CRLF between lines) plus the final CRLF a body line needs.
    private static string Reference(byte[] data) =>
        data.Length == 0 ? string.Empty : Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks) + "\r\n";

    [Fact]
    public void MatchesTheReferenceForEveryLengthUpToSeveralBlocks()
    {
        var random = new Random(42);
        foreach (int length in Enumerable.Range(0, 300).Concat([14591, 14592, 14593, 3 * 14592, 100_000]))
        {
            var data = new byte[length];
            random.NextBytes(data);
            using var output = new MemoryStream();
            Base64LineWriter.Encode(data, output);
            Assert.Equal(Reference(data), Encoding.ASCII.GetString(output.ToArray()));
            Assert.Equal(output.Length, Base64LineWriter.GetEncodedLength(length));
        }
    }

    [Fact]
    public void LinesAreAtMost76CharactersAndEndInCrlf()
    {
        var data = new byte[10_000];
        new Random(1).NextBytes(data);
        using var output = new MemoryStream();
        Base64LineWriter.Encode(data, output);
        string text = Encoding.ASCII.GetString(output.ToArray());
        Assert.EndsWith("\r\n", text, StringComparison.Ordinal);
        string[] lines = text[..^2].Split("\r\n");
        Assert.All(lines[..^1], l => Assert.Equal(76, l.Length));
        Assert.InRange(lines[^1].Length, 1, 76);
        Assert.DoesNotContain('\n', text.Replace("\r\n", string.Empty, StringComparison.Ordinal));
    }

    [Fact]
    public void AnyChunkingGivesTheSameOutputAndRoundTrips_Property()
    {
        Gen<(byte[] Data, int[] Cuts)> gen =
            from data in ArbMap.Default.GeneratorFor<byte[]>().Select(d => d.Concat(d).Concat(d).ToArray())
            from cuts in Gen.Choose(0, 100_000).ArrayOf()
            select (data, cuts);
        Check.One(
            Config.QuickThrowOnFailure.WithMaxTest(300),
            Prop.ForAll(Arb.From(gen), t =>
            {
                using var output = new MemoryStream();
                using (var writer = new Base64LineWriter(output))
                {
                    int previous = 0;
                    foreach (int cut in t.Cuts.Select(c => c % (t.Data.Length + 1)).Order().Append(t.Data.Length))
                    {
                        writer.Write(t.Data.AsSpan(previous, cut - previous));
                        previous = cut;
                    }
                }

                byte[] encoded = output.ToArray();
                return Encoding.ASCII.GetString(encoded) == Reference(t.Data)
                    && Base64BodyDecoder.Decode(encoded).AsSpan().SequenceEqual(t.Data);
            }));
    }

    [Fact]
    public void DecodeEncodeDecodeIsIdentical()
    {
        var data = new byte[200_003];
        new Random(5).NextBytes(data);
        // Odd line layout in, canonical out, same bytes both times.
        string odd = string.Join("\n", Convert.ToBase64String(data).Chunk(64).Select(c => new string(c))) + "\n";
        byte[] first = Base64BodyDecoder.Decode(Encoding.ASCII.GetBytes(odd));
        using var output = new MemoryStream();
        Base64LineWriter.Encode(first, output);
        byte[] second = Base64BodyDecoder.Decode(output.ToArray());
        Assert.Equal(data, first);
        Assert.Equal(first, second);
    }

    [Fact]
    public void WritingAfterCompleteThrows()
    {
        var writer = new Base64LineWriter(new MemoryStream());
        writer.Complete();
        writer.Complete();
        Assert.Throws<ObjectDisposedException>(() => writer.Write([1]));
    }
}
