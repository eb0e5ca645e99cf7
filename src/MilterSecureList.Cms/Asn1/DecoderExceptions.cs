namespace MilterSecureList.Cms.Asn1;

// Internal signals of the decoders; the public boundary (SessionKeyRewrapper, DoubleWrap, CmsDecryptor) turns them
// into CmsRewrapException with the matching CmsRewrapFailure, like AsnContentException → Malformed.

/// <summary>Internal signal from the decoders: well-formed but outside the allow-list.</summary>
internal sealed class UnsupportedCmsException : Exception
{
    public UnsupportedCmsException()
    {
    }

    public UnsupportedCmsException(string message)
        : base(message)
    {
    }

    public UnsupportedCmsException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>Internal signal from the decoders: a configured limit was exceeded.</summary>
internal sealed class LimitExceededException : Exception
{
    public LimitExceededException()
    {
    }

    public LimitExceededException(string message)
        : base(message)
    {
    }

    public LimitExceededException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
