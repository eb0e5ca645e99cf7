using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Directory.Storage;

namespace MilterSecureList.Directory;

/// <summary>What <c>list import-key</c> did with one key file of a bundle.</summary>
public sealed record ImportedKeyFile(string FileName, bool Written);

/// <summary>
/// Moves a list's private key files from one mail host to another when several hosts share one
/// directory database (docs/operations.md): the database names each key file, every host keeps the
/// files in its own <c>[Keys] Directory</c>. A bundle is text:
/// <code>
/// securelist list key bundle 1
/// list: crypto@lists.example.org
/// file: crypto@lists.example.org.20261204T101500.1a2b3c4d.key.pem
/// -----BEGIN PRIVATE KEY-----
/// ...
/// -----END PRIVATE KEY-----
/// file: ...
/// </code>
/// The PEM is the key file byte for byte (still encrypted when the hosts use a passphrase file).
/// </summary>
public static class ListKeyTransfer
{
    public const string BundleHeader = "securelist list key bundle 1";

    private const string ListPrefix = "list: ";
    private const string FilePrefix = "file: ";

    /// <summary>A list has a handful of keys (rollovers); this bounds what import reads.</summary>
    private const int MaxBundleBytes = 4 * CertificateInspector.MaxInputBytes;

    /// <summary>Writes the bundle of every key file the directory names for LIST (current, older, retired).</summary>
    public static int Export(SqlDirectoryStore store, ListKeyStore keys, string listAddress, Stream output)
    {
        MailingList list = store.GetList(listAddress);
        keys.CheckDirectory();
        IReadOnlyList<ListKeyRecord> records = store.GetListKeys(list.Address);
        output.Write(Encoding.ASCII.GetBytes($"{BundleHeader}\n{ListPrefix}{list.Address}\n"));
        foreach (ListKeyRecord record in records)
        {
            string path = Path.Combine(keys.DirectoryPath, record.KeyFile);
            if (!File.Exists(path))
            {
                throw new DirectoryException(DirectoryError.BadPrivateKey, $"private key file {path} is missing: export from the host that has it");
            }

            ListKeyStore.CheckPrivateFile(path);
            byte[] pem = ReadBounded(path);
            try
            {
                output.Write(Encoding.ASCII.GetBytes($"{FilePrefix}{record.KeyFile}\n"));
                output.Write(pem);
                if (pem.Length > 0 && pem[^1] != (byte)'\n')
                {
                    output.WriteByte((byte)'\n');
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pem);
            }
        }

        return records.Count;
    }

    /// <summary>
    /// Reads a bundle and writes its key files into this host's key directory (0600, owned by the
    /// directory's owner). Every file must be one the directory names for the bundle's list and must
    /// match that key's certificate; nothing is written unless the whole bundle checks out, and a
    /// different file already present under the same name is refused, never overwritten.
    /// </summary>
    public static (string List, IReadOnlyList<ImportedKeyFile> Files) Import(SqlDirectoryStore store, ListKeyStore keys, Stream input, string source)
    {
        byte[] bundle = ReadAllBounded(input, source);
        var files = new List<(string Name, byte[] Pem)>();
        try
        {
            string listAddress = Parse(bundle, source, files);
            MailingList list = store.GetList(listAddress);
            Dictionary<string, ListKeyRecord> known = store.GetListKeys(list.Address).ToDictionary(r => r.KeyFile, StringComparer.Ordinal);
            foreach ((string name, _) in files)
            {
                if (!known.ContainsKey(name))
                {
                    throw new DirectoryException(DirectoryError.InvalidArgument, $"{source}: key file {name} is not one of {list.Address}'s keys in this directory");
                }
            }

            keys.EnsureDirectory();
            var result = new List<ImportedKeyFile>();
            foreach ((string name, byte[] pem) in files)
            {
                result.Add(new ImportedKeyFile(name, WriteChecked(keys, name, pem, known[name])));
            }

            return (list.Address, result);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bundle);
            foreach ((_, byte[] pem) in files)
            {
                CryptographicOperations.ZeroMemory(pem);
            }
        }
    }

    private static bool WriteChecked(ListKeyStore keys, string name, byte[] pem, ListKeyRecord record)
    {
        string final = Path.Combine(keys.DirectoryPath, name);
        if (File.Exists(final))
        {
            byte[] present = ReadBounded(final);
            try
            {
                return CryptographicOperations.FixedTimeEquals(present.AsSpan(0, TrimLineEnds(present, 0, present.Length)), pem)
                    ? false
                    : throw new DirectoryException(DirectoryError.InvalidArgument, $"{final} exists with different contents; not overwritten (remove it first if it is wrong)");
            }
            finally
            {
                CryptographicOperations.ZeroMemory(present);
            }
        }

        // Written under a temporary name, checked against the list's certificate (with this host's
        // passphrase file), then renamed: the daemon never sees a half-written or foreign key.
        string temporary = $".import-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp";
        string temporaryPath = Path.Combine(keys.DirectoryPath, temporary);
        var create = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        try
        {
            using (var stream = new FileStream(temporaryPath, create))
            {
                stream.Write(pem);
                stream.Flush(flushToDisk: true);
            }

            GiveToDirectoryOwner(keys.DirectoryPath, temporaryPath);
            using (X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(record.Certificate))
            using (keys.ReadKey(temporary, certificate))
            {
            }

            File.Move(temporaryPath, final, overwrite: false);
            return true;
        }
        finally
        {
            if (File.Exists(temporaryPath))
            {
                File.Delete(temporaryPath);
            }
        }
    }

    /// <summary>
    /// Run as root, the CLI would leave root-owned files the daemon (its own user) cannot read: the
    /// file takes the key directory's owner and group, as the files the daemon's user created.
    /// </summary>
    private static void GiveToDirectoryOwner(string directory, string path)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }

        var psi = new ProcessStartInfo("chown") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add($"--reference={directory}");
        psi.ArgumentList.Add(path);
        using Process chown = Process.Start(psi) ?? throw new DirectoryException(DirectoryError.BadPrivateKey, "cannot run chown");
        string error = chown.StandardError.ReadToEnd();
        chown.WaitForExit();
        if (chown.ExitCode != 0)
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"chown --reference={directory} {path}: {error.Trim()}");
        }
    }

    /// <summary>Splits the bundle into (file name, PEM bytes); returns the list address.</summary>
    private static string Parse(byte[] bundle, string source, List<(string Name, byte[] Pem)> files)
    {
        int position = 0;
        string header = ReadLine(bundle, ref position);
        if (header != BundleHeader)
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{source}: not a key bundle of `securelist list export-key` (first line is not '{BundleHeader}')");
        }

        string listLine = ReadLine(bundle, ref position);
        if (!listLine.StartsWith(ListPrefix, StringComparison.Ordinal))
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{source}: line 2 is not 'list: ADDRESS'");
        }

        string listAddress = EmailAddress.Require(listLine[ListPrefix.Length..], "list address");
        string? name = null;
        int start = position;
        int lineNumber = 2;
        while (true)
        {
            int lineStart = position;
            bool end = position >= bundle.Length;
            string line = end ? string.Empty : ReadLine(bundle, ref position);
            lineNumber++;
            if (end || line.StartsWith(FilePrefix, StringComparison.Ordinal))
            {
                if (name is not null)
                {
                    // The line end export added after the file is not part of it.
                    files.Add((name, bundle[start..TrimLineEnds(bundle, start, lineStart)]));
                }

                if (end)
                {
                    break;
                }

                name = line[FilePrefix.Length..];
                // The database names files, never paths (as ListKeyStore resolves them).
                if (name.Length == 0 || name.Contains('/') || name.Contains('\\') || name.StartsWith('.') || files.Any(f => f.Name == name))
                {
                    throw new DirectoryException(DirectoryError.InvalidArgument, $"{source}:{lineNumber}: '{name}' is not a plain key file name (or appears twice)");
                }

                start = position;
            }
            else if (name is null && line.Length > 0)
            {
                throw new DirectoryException(DirectoryError.InvalidArgument, $"{source}:{lineNumber}: expected 'file: NAME'");
            }
        }

        return files.Count > 0 ? listAddress : throw new DirectoryException(DirectoryError.InvalidArgument, $"{source}: the bundle holds no key file");
    }

    /// <summary>The end of BYTES[START..END] without trailing CR and LF.</summary>
    private static int TrimLineEnds(byte[] bytes, int start, int end)
    {
        while (end > start && bytes[end - 1] is (byte)'\n' or (byte)'\r')
        {
            end--;
        }

        return end;
    }

    /// <summary>One line as ASCII, without its LF; header lines only (PEM bodies are sliced as bytes).</summary>
    private static string ReadLine(byte[] bundle, ref int position)
    {
        int end = Array.IndexOf(bundle, (byte)'\n', position);
        int stop = end < 0 ? bundle.Length : end;
        string line = Encoding.ASCII.GetString(bundle, position, stop - position).TrimEnd('\r');
        position = end < 0 ? bundle.Length : end + 1;
        return line;
    }

    private static byte[] ReadBounded(string path)
    {
        if (new FileInfo(path).Length > CertificateInspector.MaxInputBytes)
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"{path}: too large for a private key");
        }

        return File.ReadAllBytes(path);
    }

    private static byte[] ReadAllBounded(Stream input, string source)
    {
        var buffer = new byte[MaxBundleBytes + 1];
        int total = 0;
        int read;
        while (total < buffer.Length && (read = input.Read(buffer, total, buffer.Length - total)) > 0)
        {
            total += read;
        }

        try
        {
            return total > MaxBundleBytes
                ? throw new DirectoryException(DirectoryError.InvalidArgument, $"{source}: larger than {MaxBundleBytes} bytes, not a key bundle")
                : buffer[..total];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }
}
