using System.Buffers;

namespace MilterSecureList.Testing;

/// <summary>Builds multi-segment <see cref="ReadOnlySequence{T}"/>s for split-point tests.</summary>
public static class SegmentedSequence
{
    /// <summary>The bytes split at the given offsets (each strictly increasing, inside the array).</summary>
    public static ReadOnlySequence<byte> Create(byte[] data, params int[] splitAt)
    {
        var parts = new List<byte[]>();
        int start = 0;
        foreach (int cut in splitAt)
        {
            parts.Add(data[start..cut]);
            start = cut;
        }

        parts.Add(data[start..]);
        return Create(parts);
    }

    /// <summary>One segment per part (empty parts included, which real pipes can produce).</summary>
    public static ReadOnlySequence<byte> Create(IReadOnlyList<byte[]> parts)
    {
        if (parts.Count == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(parts[0], 0);
        Segment last = first;
        for (int i = 1; i < parts.Count; i++)
        {
            last = last.Append(parts[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Every byte in its own segment.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(byte[] data) => Create(data.Select(b => new[] { b }).ToList());

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
