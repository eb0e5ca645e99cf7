namespace MilterSecureList.Directory;

/// <summary>Why a directory operation failed. User errors map to CLI exit code 2.</summary>
public enum DirectoryError
{
    /// <summary>Bad argument or input value (address syntax, option value...).</summary>
    InvalidArgument,
    UnknownList,
    UnknownMember,
    DuplicateList,
    DuplicateMember,
    /// <summary>Nested lists would loop (a -> b -> a).</summary>
    Cycle,
    /// <summary>Nested lists deeper than the limit.</summary>
    DepthExceeded,
    /// <summary>Unreadable, unsupported or unacceptable certificate.</summary>
    BadCertificate,
    /// <summary>Unreadable or unacceptable private key.</summary>
    BadPrivateKey,
    /// <summary>A key file or key directory that group or others can access.</summary>
    InsecurePermissions,
    /// <summary>The database cannot be reached or answered with an error.</summary>
    Unavailable,
    /// <summary>The database holds something inconsistent (e.g. no current list key).</summary>
    Corrupt,
}

/// <summary>The one exception type of the directory layer; the message is a single line.</summary>
public sealed class DirectoryException : Exception
{
    public DirectoryException(DirectoryError reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    public DirectoryException(DirectoryError reason, string message, Exception inner)
        : base(message, inner)
    {
        Reason = reason;
    }

    public DirectoryError Reason { get; }

    /// <summary>True when the operator (not the system) can fix the cause.</summary>
    public bool IsUserError => Reason is not (DirectoryError.Unavailable or DirectoryError.Corrupt);
}
