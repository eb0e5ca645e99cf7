using System.Data.Common;

namespace MilterSecureList.Directory.Storage;

/// <summary>
/// Packs the blobs of one large read (the member certificates of a list) into shared 1 MiB buffers and hands out
/// slices of them, instead of one array per row.
/// </summary>
/// <remarks>
/// A cached expansion keeps every member's certificate for as long as the directory does not change. As one array
/// each, 100,000 certificates were 100,000 young objects that the garbage collector copied from generation to
/// generation while the read went on, most of the cold expansion beyond the bare read of the rows (docs/design.md,
/// "Lists of 100,000 members"). Buffers this size go to the large-object heap, where nothing is copied; a buffer lives
/// while any slice of it does, i.e. as long as the expansion that holds them.
/// </remarks>
internal sealed class BlobArena
{
    internal const int ChunkBytes = 1 << 20;

    private byte[]? _chunk;
    private int _used;

    /// <summary>Copies column <paramref name="ordinal"/> of the current row (a non-null blob) into the arena.</summary>
    public ReadOnlyMemory<byte> Read(DbDataReader reader, int ordinal)
    {
        long length = reader.GetBytes(ordinal, 0, null, 0, 0);
        if (length > ChunkBytes / 4)
        {
            // A blob this large (no certificate is) gets an array of its own rather than wasting most of a buffer.
            return (byte[])reader.GetValue(ordinal);
        }

        int size = (int)length;
        if (_chunk is null || _used + size > _chunk.Length)
        {
            _chunk = GC.AllocateUninitializedArray<byte>(ChunkBytes);
            _used = 0;
        }

        long copied = size == 0 ? 0 : reader.GetBytes(ordinal, 0, _chunk, _used, size);
        if (copied != size)
        {
            throw new InvalidOperationException($"a blob column gave {copied} bytes of {size}");
        }

        var slice = new ReadOnlyMemory<byte>(_chunk, _used, size);
        _used += size;
        return slice;
    }
}
