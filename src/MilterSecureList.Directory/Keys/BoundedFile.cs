namespace MilterSecureList.Directory;

/// <summary>
/// Reads small input files (certificates, keys, passphrases) with a hard size limit. The limit applies to
/// what is read, not to what the file system reports: /dev/zero and FIFOs report length 0 and never end.
/// </summary>
public static class BoundedFile
{
    /// <summary>All of PATH, or a <see cref="DirectoryException"/> if it is not a regular file or exceeds MAXBYTES.</summary>
    public static byte[] ReadAllBytes(string path, int maxBytes, DirectoryError error, string what)
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
            byte[] buffer = new byte[Math.Min(maxBytes + 1L, Math.Max(stream.Length + 1, 4096))];
            int total = 0;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length > maxBytes)
                    {
                        System.Security.Cryptography.CryptographicOperations.ZeroMemory(buffer);
                        throw new DirectoryException(error, $"{path}: larger than {maxBytes} bytes, not a {what}");
                    }

                    byte[] larger = new byte[Math.Min(maxBytes + 1L, buffer.Length * 2L)];
                    buffer.CopyTo(larger, 0);
                    System.Security.Cryptography.CryptographicOperations.ZeroMemory(buffer);
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

            byte[] exact = buffer[..total];
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(buffer);
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
}
