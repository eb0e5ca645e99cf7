using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MilterSecureList.Directory;

/// <summary>
/// List private keys as PKCS#8 PEM files (encrypted PKCS#8 when a passphrase file is configured)
/// in one directory. The directory must be 0700-ish and the files 0600-ish: anything group or
/// others can read or write is refused, by the daemon and the CLI alike.
/// </summary>
public sealed class ListKeyStore
{
    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private const UnixFileMode GroupOrOtherReadWrite =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>PBKDF2 rounds for encrypted key files: costly for a guesser, a fraction of a second for us.</summary>
    private const int Pbkdf2Iterations = 200_000;

    private readonly KeysOptions _options;

    public ListKeyStore(KeysOptions options)
    {
        _options = options;
    }

    public string DirectoryPath => _options.Directory;

    /// <summary>Creates the key directory 0700 when missing, else checks its mode.</summary>
    public void EnsureDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            throw UnixOnly();
        }

        if (!System.IO.Directory.Exists(DirectoryPath))
        {
            System.IO.Directory.CreateDirectory(DirectoryPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        CheckDirectory();
    }

    /// <summary>Refuses a key directory that group or others can read or write (traverse-only is fine).</summary>
    public void CheckDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            throw UnixOnly();
        }

        if (!System.IO.Directory.Exists(DirectoryPath))
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"key directory {DirectoryPath} does not exist");
        }

        UnixFileMode mode = File.GetUnixFileMode(DirectoryPath);
        if ((mode & GroupOrOtherReadWrite) != 0)
        {
            throw new DirectoryException(
                DirectoryError.InsecurePermissions,
                $"key directory {DirectoryPath} has mode {FormatMode(mode)}: group or others can access it (chmod 700 {DirectoryPath})");
        }
    }

    /// <summary>Refuses a private-key (or passphrase) file that group or others can access.</summary>
    public static void CheckPrivateFile(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            throw UnixOnly();
        }

        UnixFileMode mode = File.GetUnixFileMode(path);
        if ((mode & GroupOrOther) != 0)
        {
            throw new DirectoryException(
                DirectoryError.InsecurePermissions,
                $"private key file {path} has mode {FormatMode(mode)}: group or others can read it (chmod 600 {path})");
        }
    }

    // Key-file protection relies on Unix file modes; a Postfix milter runs on Unix only. Guarding
    // here (instead of marking the assembly) keeps CA1416 quiet for the projects that call us.
    private static PlatformNotSupportedException UnixOnly() =>
        new("list key files need Unix file modes (0600/0700); Windows is not supported");

    private static string FormatMode(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');

    /// <summary>Writes KEY to a new 0600 file and returns the file name (relative to the key directory).</summary>
    public string WriteKey(string listAddress, AsymmetricAlgorithm key, DateTimeOffset now)
    {
        if (OperatingSystem.IsWindows())
        {
            throw UnixOnly();
        }

        EnsureDirectory();
        (uint ownerUid, uint ownerGid) = RequireWritableByUs();
        string safe = new string(listAddress.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@' ? c : '_').ToArray());
        string fileName = $"{safe}.{now:yyyyMMddTHHmmss}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}.key.pem";
        string path = Path.Combine(DirectoryPath, fileName);

        char[] pem = ExportPem(key);
        byte[] bytes = SecretBytes(pem.Length);
        Encoding.ASCII.GetBytes(pem, bytes);
        try
        {
            var create = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            };
            using (var stream = new FileStream(path, create))
            {
                if (UnixFile.IsRoot && ownerUid != 0)
                {
                    // Root runs the CLI (the README's commands); the daemon runs as the directory's owner and
                    // must be able to read the key. Handed over while still empty.
                    UnixFile.ChangeOwner(path, ownerUid, ownerGid);
                }

                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
            CryptographicOperations.ZeroMemory(MemoryMarshalBytes(pem));
        }

        return fileName;
    }

    /// <summary>
    /// The key directory's owner and group. Key files belong to them, whoever runs the CLI: root's files are
    /// chowned; another user, who could not give the file away, is refused with the command to use instead.
    /// </summary>
    private (uint Uid, uint Gid) RequireWritableByUs()
    {
        if (!UnixFile.TryStat(DirectoryPath, out uint uid, out uint gid, out _))
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"key directory {DirectoryPath} cannot be examined");
        }

        if (!UnixFile.IsRoot && UnixFile.EffectiveUserId != uid)
        {
            string owner = UnixFile.UserName(uid);
            throw new DirectoryException(
                DirectoryError.InsecurePermissions,
                $"key directory {DirectoryPath} belongs to {owner}: run this as root or as {owner} (runuser -u {owner} -- securelist ...)");
        }

        return (uid, gid);
    }

    private static Span<byte> MemoryMarshalBytes(char[] chars) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(chars.AsSpan());

    // Key material lives in pinned arrays: the GC never moves (and so never copies) them, so zeroing one after
    // use leaves no copy of the key on the managed heap.
    private static byte[] SecretBytes(int length) => GC.AllocateArray<byte>(length, pinned: true);

    private static char[] SecretChars(int length) => GC.AllocateArray<char>(length, pinned: true);

    /// <summary>
    /// PKCS#8 PEM (encrypted when a passphrase is configured) into a char buffer the caller zeroes:
    /// the string-returning Export*Pem methods would leave key text on the heap until collected.
    /// </summary>
    private char[] ExportPem(AsymmetricAlgorithm key)
    {
        char[]? passphrase = ReadPassphrase();
        try
        {
            var pbe = new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, Pbkdf2Iterations);
            for (int size = 8192; ; size *= 2)
            {
                char[] buffer = SecretChars(size);
                bool written = passphrase is null
                    ? key.TryExportPkcs8PrivateKeyPem(buffer, out int length)
                    : key.TryExportEncryptedPkcs8PrivateKeyPem(passphrase, pbe, buffer, out length);
                if (written)
                {
                    char[] pem = SecretChars(length);
                    buffer.AsSpan(0, length).CopyTo(pem);
                    Array.Clear(buffer);
                    return pem;
                }

                Array.Clear(buffer);
            }
        }
        finally
        {
            if (passphrase is not null)
            {
                Array.Clear(passphrase);
            }
        }
    }

    /// <summary>
    /// Loads the private key for CERTIFICATE from FILENAME after checking directory and file
    /// modes: an RSA for RSA certificates, an ECDiffieHellman for EC ones. Checks that the key
    /// matches the certificate.
    /// </summary>
    public AsymmetricAlgorithm ReadKey(string fileName, X509Certificate2 certificate)
    {
        CheckDirectory();
        string path = ResolveKeyFile(fileName);
        if (!File.Exists(path))
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"private key file {path} is missing");
        }

        CheckPrivateFile(path);
        return LoadPrivateKey(path, certificate, ReadPassphrase);
    }

    /// <summary>Loads a PEM private key (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1) matching CERTIFICATE.</summary>
    public static AsymmetricAlgorithm LoadPrivateKey(string path, X509Certificate2 certificate, Func<char[]?> passphrase)
    {
        byte[] bytes = BoundedFile.ReadAllBytes(path, CertificateInspector.MaxInputBytes, DirectoryError.BadPrivateKey, "private key", pinned: true);

        char[] pem = SecretChars(bytes.Length);
        try
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                pem[i] = (char)bytes[i];
            }

            bool encrypted = pem.AsSpan().IndexOf("ENCRYPTED PRIVATE KEY") >= 0;
            AsymmetricAlgorithm key = certificate.GetKeyAlgorithm() switch
            {
                "1.2.840.113549.1.1.1" => RSA.Create(),
                "1.2.840.10045.2.1" => ECDiffieHellman.Create(),
                string other => throw new DirectoryException(DirectoryError.BadPrivateKey, $"{path}: certificate key type {other} is not supported"),
            };

            try
            {
                if (encrypted)
                {
                    char[]? secret = passphrase();
                    if (secret is null)
                    {
                        throw new DirectoryException(DirectoryError.BadPrivateKey, $"{path}: key is passphrase-protected but [Keys] PassphraseFile is not set (user import: give --passphrase-file)");
                    }

                    try
                    {
                        key.ImportFromEncryptedPem(pem, secret);
                    }
                    finally
                    {
                        Array.Clear(secret);
                    }
                }
                else
                {
                    key.ImportFromPem(pem);
                }

                RequireMatch(key, certificate, path);
                return key;
            }
            catch (CryptographicException e)
            {
                key.Dispose();
                throw new DirectoryException(DirectoryError.BadPrivateKey, $"{path}: cannot read the private key ({e.Message.TrimEnd('.')}); wrong passphrase or not a key for this certificate?", e);
            }
            catch (ArgumentException e)
            {
                key.Dispose();
                throw new DirectoryException(DirectoryError.BadPrivateKey, $"{path}: no PEM private key of the certificate's type found", e);
            }
            catch (DirectoryException)
            {
                key.Dispose();
                throw;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
            CryptographicOperations.ZeroMemory(MemoryMarshalBytes(pem));
        }
    }

    private static void RequireMatch(AsymmetricAlgorithm key, X509Certificate2 certificate, string path)
    {
        // PublicKey's getters, not the certificate's: those return nothing when keyUsage forbids the use, and a
        // certificate unfit for its job must be refused for that reason where the job is known, not as a mismatch.
        bool matches = key switch
        {
            RSA rsa => certificate.PublicKey.GetRSAPublicKey() is { } pub && Same(pub.ExportRSAPublicKey(), rsa.ExportRSAPublicKey(), pub),
            ECDiffieHellman ecdh => certificate.PublicKey.GetECDiffieHellmanPublicKey() is { } pub && Same(pub.ExportSubjectPublicKeyInfo(), ecdh.ExportSubjectPublicKeyInfo(), pub),
            _ => false,
        };

        if (!matches)
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"{path}: private key does not match the certificate");
        }

        static bool Same(byte[] a, byte[] b, IDisposable owner)
        {
            owner.Dispose();
            return a.AsSpan().SequenceEqual(b);
        }
    }

    public void DeleteKey(string fileName)
    {
        string path = ResolveKeyFile(fileName);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    private string ResolveKeyFile(string fileName)
    {
        // The database names files, never paths: a tampered row must not point outside the key directory.
        if (fileName.Length == 0 || fileName.Contains('/') || fileName.Contains('\\') || fileName is "." or "..")
        {
            throw new DirectoryException(DirectoryError.Corrupt, $"key file reference '{fileName}' is not a plain file name");
        }

        return Path.Combine(DirectoryPath, fileName);
    }

    private const int MaxPassphraseBytes = 4096;

    /// <summary>
    /// The [Keys] PassphraseFile checks, for start-up (the daemon) as for each use: it exists, is a regular
    /// file, and group and others cannot access it.
    /// </summary>
    public static void CheckPassphraseFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"passphrase file {path} does not exist");
        }

        if (!UnixFile.IsRegularFile(path))
        {
            throw new DirectoryException(DirectoryError.BadPrivateKey, $"passphrase file {path} is not a regular file");
        }

        CheckPrivateFile(path);
    }

    private char[]? ReadPassphrase() => string.IsNullOrEmpty(_options.PassphraseFile) ? null : ReadPassphraseFile(_options.PassphraseFile);

    /// <summary>
    /// The passphrase in PATH (checked as [Keys] PassphraseFile is: a regular file group and others cannot read),
    /// without trailing line ends, in a pinned buffer the caller clears.
    /// </summary>
    public static char[] ReadPassphraseFile(string path)
    {
        CheckPassphraseFile(path);
        byte[] bytes = BoundedFile.ReadAllBytes(path, MaxPassphraseBytes, DirectoryError.BadPrivateKey, "passphrase file", pinned: true);
        try
        {
            int length = bytes.Length;
            while (length > 0 && bytes[length - 1] is (byte)'\n' or (byte)'\r')
            {
                length--;
            }

            if (length == 0)
            {
                throw new DirectoryException(DirectoryError.BadPrivateKey, $"passphrase file {path} is empty");
            }

            char[] chars = SecretChars(Encoding.UTF8.GetCharCount(bytes, 0, length));
            Encoding.UTF8.GetChars(bytes, 0, length, chars, 0);
            return chars;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}
