namespace MilterSecureList.Directory;

/// <summary>Address helpers. Addresses compare case-insensitively everywhere in the directory.</summary>
public static class EmailAddress
{
    /// <summary>RFC 5321 section 4.5.3.1.3: a path is at most 256 octets including the brackets.</summary>
    public const int MaxLength = 254;

    public static StringComparer Comparer => StringComparer.OrdinalIgnoreCase;

    /// <summary>The form stored in the <c>address_norm</c> columns and used as cache keys.</summary>
    public static string Normalize(string address) => address.Trim().ToLowerInvariant();

    /// <summary>A deliberately simple syntax check: one '@', non-empty parts, no spaces or controls.</summary>
    public static bool IsValid(string? address)
    {
        if (string.IsNullOrEmpty(address) || address.Length > MaxLength)
        {
            return false;
        }

        int at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1 || address.IndexOf('@') != at)
        {
            return false;
        }

        foreach (char c in address)
        {
            if (c <= ' ' || c == '<' || c == '>' || c == ',' || c == '"' || c == 0x7f)
            {
                return false;
            }
        }

        string domain = address[(at + 1)..];
        return !domain.StartsWith('.') && !domain.EndsWith('.') && !domain.Contains("..", StringComparison.Ordinal);
    }

    /// <summary>Throws <see cref="DirectoryException"/> for an invalid address.</summary>
    public static string Require(string? address, string what)
    {
        string trimmed = address?.Trim() ?? string.Empty;
        if (!IsValid(trimmed))
        {
            throw new DirectoryException(DirectoryError.InvalidArgument, $"{what} '{address}' is not a valid mail address");
        }

        return trimmed;
    }
}
