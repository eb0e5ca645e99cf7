using System.Security.Cryptography;

namespace MilterSecureList.Directory;

/// <summary>
/// The one reader for small input files (certificates, private keys, passphrases): refuses anything but a regular
/// file before opening it, and caps what is read, not what the file system reports (/dev/zero and FIFOs report
/// length 0 and never end). With <c>pinned</c> every buffer it fills is pinned and zeroed when dropped, so a key
/// or passphrase leaves no copy on the managed heap; the caller zeroes the result.
/// </summary>
public static class BoundedFile
{
    /// <summary>All of PATH, or a <see cref="DirectoryException"/> with <paramref name="error"/> if it is missing,
    /// not a regular file, unreadable or larger than MAXBYTES. WHAT names the expected content in the message.</summary>
    public static byte[] ReadAllBytes(string path, int maxBytes, DirectoryError error, string what, bool pinned = false)
    {
        try
        {
            if (!File.Exists(path) && !System.IO.Directory.Exists(path))
            {
                throw new DirectoryException(error, $"{path}: no such file");
            }

            // Checked before opening: opening a FIFO for reading blocks until a writer appears.
            if (!UnixFile.IsRegularFile(path))
            {
                throw new DirectoryException(error, $"{path}: not a regular file, not a {what}");
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            byte[] buffer = Allocate((int)Math.Min(maxBytes + 1L, Math.Max(stream.Length + 1, 4096)), pinned);
            int total = 0;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length > maxBytes)
                    {
                        CryptographicOperations.ZeroMemory(buffer);
                        throw new DirectoryException(error, $"{path}: larger than {maxBytes} bytes, not a {what}");
                    }

                    byte[] larger = Allocate((int)Math.Min(maxBytes + 1L, buffer.Length * 2L), pinned);
                    buffer.CopyTo(larger, 0);
                    CryptographicOperations.ZeroMemory(buffer);
                    buffer = larger;
                }

                int n = stream.Read(buffer, total, buffer.Length - total);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            if (total == buffer.Length)
            {
                return buffer;
            }

            byte[] exact = Allocate(total, pinned);
            buffer.AsSpan(0, total).CopyTo(exact);
            CryptographicOperations.ZeroMemory(buffer);
            return exact;
        }
        catch (IOException e)
        {
            throw new DirectoryException(error, $"{path}: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new DirectoryException(error, $"{path}: {e.Message}", e);
        }
    }

    // Pinned: the GC never moves (and so never copies) the array, so zeroing it leaves nothing behind.
    private static byte[] Allocate(int length, bool pinned) => pinned ? GC.AllocateArray<byte>(length, pinned: true) : new byte[length];
}
