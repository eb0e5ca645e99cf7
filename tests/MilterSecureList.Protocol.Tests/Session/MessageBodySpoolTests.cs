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

public class SpoolMemoryBudgetTests
{
    [Fact]
    public void SpoolsShareTheBudgetAndSpillWhenItIsSpentAndGiveItBackOnDispose()
    {
        const int segment = 64 * 1024;
        string dir = System.IO.Directory.CreateTempSubdirectory("msl-spool-").FullName;
        try
        {
            var budget = new SpoolMemoryBudget(3 * segment);
            byte[] a = Enumerable.Range(0, 200_000).Select(i => (byte)i).ToArray();
            byte[] b = Enumerable.Range(0, 100_000).Select(i => (byte)(i * 7)).ToArray();
            using var first = new MessageBodySpool(1 << 20, dir, budget);
            first.Append(a);
            Assert.Equal(3 * segment, budget.Used); // the budget, not the 1 MiB threshold, stopped it
            Assert.True(first.IsSpilledToFile);

            using (var second = new MessageBodySpool(1 << 20, dir, budget))
            {
                second.Append(b);
                Assert.True(second.IsSpilledToFile); // nothing left: all of it in the file
                Assert.Equal(3 * segment, budget.Used);
                Assert.Equal(b, ReadAll(second));
            }

            Assert.Equal(a, ReadAll(first));
            first.Dispose();
            Assert.Equal(0, budget.Used);

            using var third = new MessageBodySpool(1 << 20, dir, budget);
            third.Append(b);
            Assert.False(third.IsSpilledToFile); // the memory is back
            Assert.Equal(2 * segment, budget.Used);
        }
        finally
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ConcurrentReservationsNeverExceedTheLimit()
    {
        var budget = new SpoolMemoryBudget(10 * 65536);
        long peak = 0;
        Parallel.For(0, 8, _ =>
        {
            for (int i = 0; i < 20_000; i++)
            {
                if (budget.TryReserve(65536))
                {
                    long used = budget.Used;
                    InterlockedMax(ref peak, used);
                    budget.Release(65536);
                }
            }
        });
        Assert.InRange(peak, 65536, 10 * 65536);
        Assert.Equal(0, budget.Used);
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long seen = Interlocked.Read(ref target);
        while (value > seen)
        {
            long previous = Interlocked.CompareExchange(ref target, value, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }

    private static byte[] ReadAll(MessageBodySpool spool)
    {
        using Stream s = spool.OpenRead();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
