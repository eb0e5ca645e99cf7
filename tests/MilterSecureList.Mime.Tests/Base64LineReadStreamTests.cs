namespace MilterSecureList.Mime.Tests;

public sealed class Base64LineReadStreamTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(56)]
    [InlineData(57)]
    [InlineData(58)]
    [InlineData(57 * 256)]
    [InlineData((57 * 256) + 1)]
    [InlineData(100_003)]
    public void YieldsExactlyWhatTheLineWriterWritesForAnyReadSize(int size)
    {
        byte[] data = new byte[size];
        new Random(size).NextBytes(data);
        using var expected = new MemoryStream();
        Base64LineWriter.Encode(data, expected);

        foreach (int readSize in new[] { 1, 7, 78, 4096, 65535 })
        {
            using var stream = new Base64LineReadStream(data);
            Assert.Equal(expected.Length, stream.Length);
            using var actual = new MemoryStream();
            byte[] buffer = new byte[readSize];
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                actual.Write(buffer, 0, n);
            }

            Assert.Equal(expected.ToArray(), actual.ToArray());
        }
    }

    [Fact]
    public void SeekingAnywhereReadsTheSameBytes()
    {
        byte[] data = new byte[50_000];
        new Random(3).NextBytes(data);
        using var expected = new MemoryStream();
        Base64LineWriter.Encode(data, expected);
        byte[] all = expected.ToArray();
        using var stream = new Base64LineReadStream(data);
        foreach (int position in new[] { 0, 77, 78, 19_967, 19_968, 19_969, all.Length - 3, 5 })
        {
            stream.Position = position;
            byte[] buffer = new byte[100];
            int n = stream.Read(buffer);
            Assert.Equal(all.AsSpan(position, Math.Min(100, all.Length - position)).ToArray(), buffer.AsSpan(0, n).ToArray());
        }
    }
}
