using MilterSecureList.Protocol.Session;

namespace MilterSecureList.Protocol.Tests.Session;

public class MessageBodySpoolTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(100, 50)]
    [InlineData(100, 100)]
    [InlineData(100, 101)]
    [InlineData(70_000, 200_000)]
    [InlineData(0, 1000)]
    public void StoresBytesInMemoryUpToTheThresholdThenInATempFile(int threshold, int size)
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-spool-").FullName;
        try
        {
            byte[] data = Enumerable.Range(0, size).Select(i => (byte)(i * 31)).ToArray();
            using (var spool = new MessageBodySpool(threshold, dir))
            {
                // Append in uneven pieces to cross segment and threshold boundaries.
                int pos = 0;
                int step = 1;
                while (pos < size)
                {
                    int n = Math.Min(step, size - pos);
                    spool.Append(data.AsSpan(pos, n));
                    pos += n;
                    step = step * 3 % 70_001 + 1;
                }

                Assert.Equal(size, spool.Length);
                Assert.Equal(size > threshold, spool.IsSpilledToFile);
                Assert.Empty(System.IO.Directory.GetFiles(dir)); // the spill file is unlinked at once
                using Stream a = spool.OpenRead();
                using Stream b = spool.OpenRead();
                using var ms = new MemoryStream();
                a.CopyTo(ms);
                Assert.Equal(data, ms.ToArray());
                Assert.Equal(size, b.Length);
            }

            Assert.Empty(System.IO.Directory.GetFiles(dir));
        }
        finally
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ReadAfterDisposeThrows()
    {
        var spool = new MessageBodySpool(10);
        spool.Append("abc"u8);
        Stream s = spool.OpenRead();
        spool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.ReadByte());
        Assert.Throws<ObjectDisposedException>(() => spool.OpenRead());
    }
}

public class SpoolFileTests
{
    [Fact]
    public void ConnectionSpoolFileIsReusedAcrossMessagesAndNeverVisible()
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-spoolfile-").FullName;
        try
        {
            using var file = new SpoolFile(dir);
            for (int m = 0; m < 3; m++)
            {
                byte[] data = Enumerable.Range(0, 50_000 + m).Select(i => (byte)(i + m)).ToArray();
                using (var spool = new MessageBodySpool(1000, file))
                {
                    spool.Append(data);
                    Assert.True(spool.IsSpilledToFile);
                    using var ms = new MemoryStream();
                    spool.OpenRead().CopyTo(ms);
                    Assert.Equal(data, ms.ToArray());
                    Assert.Throws<InvalidOperationException>(() => new MessageBodySpool(0, file).Append(new byte[1]));
                }

                Assert.Empty(System.IO.Directory.GetFiles(dir));
            }
        }
        finally
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }
}
