using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Directory;

namespace MilterSecureList.Admin.DoubleWrap;

/// <summary>One epoch's list key (docs/double-wrap.md §4): list address, epoch and the 32-byte AES-256 KEK.
/// The owner's and the members' secret; the server never stores it. Text format, one field a line:
/// <code>
/// # MilterSecureList list key (secret)
/// List: crypto@lists.example.org
/// Epoch: 1763740000
/// Key: BASE64 of 32 bytes
/// </code></summary>
public sealed class ListKeyFile : IDisposable
{
    public const int KeyLength = 32;

    private readonly byte[] _key;

    public ListKeyFile(string list, long epoch, byte[] key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(list);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (key.Length != KeyLength)
        {
            throw new UsageException($"a list key is {KeyLength} bytes, not {key.Length}");
        }

        List = list.Trim().ToLowerInvariant();
        Epoch = epoch;
        _key = key;
    }

    public string List { get; }

    public long Epoch { get; }

    /// <summary>The key bytes (not a copy: do not keep it beyond the file's lifetime).</summary>
    public byte[] Key => _key;

    /// <summary>A new epoch's key from the OS CSPRNG.</summary>
    public static ListKeyFile Create(string list, long epoch) => new(list, epoch, RandomNumberGenerator.GetBytes(KeyLength));

    /// <summary>The file's text. Contains the key: write it only to 0600 files or into an encrypted message.</summary>
    public string Format() =>
        "# MilterSecureList list key (secret: with a copy of a post it reads the list; keep mode 0600)\n"
        + $"List: {List}\nEpoch: {Epoch.ToString(CultureInfo.InvariantCulture)}\nKey: {Convert.ToBase64String(_key)}\n";

    /// <exception cref="UsageException">The text is not a list key file.</exception>
    public static ListKeyFile Parse(string text, string source)
    {
        string? list = null;
        long? epoch = null;
        byte[]? key = null;
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue; // tolerate MIME headers or a signature around the fields
            }

            string name = line[..colon].Trim();
            string value = line[(colon + 1)..].Trim();
            if (name.Equals("List", StringComparison.OrdinalIgnoreCase))
            {
                list = value;
            }
            else if (name.Equals("Epoch", StringComparison.OrdinalIgnoreCase))
            {
                epoch = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long e)
                    ? e
                    : throw new UsageException($"{source}: epoch '{value}' is not a non-negative integer");
            }
            else if (name.Equals("Key", StringComparison.OrdinalIgnoreCase))
            {
                key = new byte[KeyLength];
                if (!Convert.TryFromBase64String(value, key, out int written) || written != KeyLength)
                {
                    CryptographicOperations.ZeroMemory(key);
                    throw new UsageException($"{source}: the key is not {KeyLength} bytes of base64");
                }
            }
        }

        if (list is null || epoch is null || key is null)
        {
            if (key is not null)
            {
                CryptographicOperations.ZeroMemory(key);
            }

            throw new UsageException($"{source}: not a list key file (needs List:, Epoch: and Key: lines)");
        }

        return new ListKeyFile(list, epoch.Value, key);
    }

    /// <summary>Loads a key file; refuses one that others can read (as the server's key files).</summary>
    public static ListKeyFile Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"{path}: no such list key file");
        }

        try
        {
            ListKeyStore.CheckPrivateFile(path);
        }
        catch (DirectoryException e)
        {
            throw new UsageException(e.Message);
        }

        return Parse(File.ReadAllText(path, Encoding.ASCII), path);
    }

    /// <summary>Writes the file with mode 0600, created exclusively unless <paramref name="overwrite"/>.</summary>
    public void Save(string path, bool overwrite = false)
    {
        var options = new FileStreamOptions
        {
            Mode = overwrite ? FileMode.Create : FileMode.CreateNew,
            Access = FileAccess.Write,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var stream = new FileStream(path, options);
            byte[] text = Encoding.ASCII.GetBytes(Format());
            stream.Write(text);
            CryptographicOperations.ZeroMemory(text);
        }
        catch (IOException) when (!overwrite && File.Exists(path))
        {
            throw new UsageException($"{path} exists; a list key file is never overwritten");
        }

        if (!OperatingSystem.IsWindows())
        {
            // UnixCreateMode applies only to new files (and is masked by the umask).
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}

/// <summary>A member's key directory: one <c>LIST.EPOCH.key</c> file per epoch, 0600, directory 0700.</summary>
public sealed class ListKeyDirectory(string path)
{
    public string Path { get; } = path;

    public static string FileName(string list, long epoch) =>
        $"{list.Trim().ToLowerInvariant().Replace('/', '_')}.{epoch.ToString(CultureInfo.InvariantCulture)}.key";

    /// <summary>Stores the key; an identical existing file is fine (returns false), a different one for the same epoch is
    /// refused, and so is an epoch older than the newest one held for the list (a replayed key message would otherwise
    /// bring back a key the owner has rotated away from).</summary>
    /// <exception cref="KeyMessageRefusedException">A different key for a held epoch, or an older epoch.</exception>
    public bool Store(ListKeyFile key, out string file)
    {
        CreateDirectory();
        file = System.IO.Path.Combine(Path, FileName(key.List, key.Epoch));
        if (File.Exists(file))
        {
            using ListKeyFile existing = ListKeyFile.Load(file);
            if (!CryptographicOperations.FixedTimeEquals(existing.Key, key.Key))
            {
                throw new KeyMessageRefusedException($"{file} already holds a different key for {key.List} epoch {key.Epoch}: refused (the key you hold is kept)");
            }

            return false;
        }

        if (NewestEpoch(key.List) is { } newest && newest > key.Epoch)
        {
            throw new KeyMessageRefusedException($"epoch {key.Epoch} of {key.List} is older than epoch {newest} you hold: refused (a replayed key message?)");
        }

        key.Save(file);
        return true;
    }

    /// <summary>The newest epoch held for LIST, or null.</summary>
    public long? NewestEpoch(string list)
    {
        long? newest = null;
        foreach (ListKeyFile key in AllKeys())
        {
            using (key)
            {
                if (string.Equals(key.List, list.Trim(), StringComparison.OrdinalIgnoreCase) && (newest is null || key.Epoch > newest))
                {
                    newest = key.Epoch;
                }
            }
        }

        return newest;
    }

    /// <summary>Where the list owner's certificate is pinned (first import, or <c>--owner-cert</c>): <c>LIST.owner.pem</c>.</summary>
    public string OwnerPinFile(string list) =>
        System.IO.Path.Combine(Path, list.Trim().ToLowerInvariant().Replace('/', '_') + ".owner.pem");

    public X509Certificate2? LoadOwnerPin(string list)
    {
        string file = OwnerPinFile(list);
        return File.Exists(file) ? X509Certificate2.CreateFromPem(File.ReadAllText(file)) : null;
    }

    public string SaveOwnerPin(string list, X509Certificate2 owner)
    {
        CreateDirectory();
        string file = OwnerPinFile(list);
        using (var stream = new FileStream(file, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            stream.Write(Encoding.ASCII.GetBytes(CertificateInspector.ToPem(owner)));
        }

        return file;
    }

    private void CreateDirectory()
    {
        if (!System.IO.Directory.Exists(Path))
        {
            System.IO.Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Every readable key file of the directory; the caller disposes each.</summary>
    private IEnumerable<ListKeyFile> AllKeys()
    {
        if (!System.IO.Directory.Exists(Path))
        {
            yield break;
        }

        foreach (string other in System.IO.Directory.EnumerateFiles(Path, "*.key"))
        {
            ListKeyFile key;
            try
            {
                key = ListKeyFile.Load(other);
            }
            catch (UsageException)
            {
                continue;
            }

            yield return key;
        }
    }

    /// <summary>The key of (list, epoch), or null. A copy the caller zeroes.</summary>
    public byte[]? Find(string list, long epoch)
    {
        string file = System.IO.Path.Combine(Path, FileName(list, epoch));
        if (File.Exists(file))
        {
            using ListKeyFile key = ListKeyFile.Load(file);
            if (string.Equals(key.List, list.Trim(), StringComparison.OrdinalIgnoreCase) && key.Epoch == epoch)
            {
                return (byte[])key.Key.Clone();
            }
        }

        // Keys saved under another name (e.g. the owner's --out file copied in): look at every *.key file.
        foreach (ListKeyFile key in AllKeys())
        {
            using (key)
            {
                if (string.Equals(key.List, list.Trim(), StringComparison.OrdinalIgnoreCase) && key.Epoch == epoch)
                {
                    return (byte[])key.Key.Clone();
                }
            }
        }

        return null;
    }
}
