using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.Directory;

/// <summary>
/// A list key: certificate plus private key loaded from its 0600 file. <see cref="PrivateKey"/> is an
/// <see cref="RSA"/> for RSA certificates and an <see cref="ECDiffieHellman"/> for EC ones (S/MIME
/// EC recipients use key agreement, RFC 5753).
/// </summary>
/// <remarks>
/// Instances returned by <see cref="CachingListDirectory"/> are shared and owned by the cache: do
/// not dispose them. Instances returned by <see cref="ListDirectory"/> belong to the caller.
/// </remarks>
public sealed class ListKeyPair : IDisposable
{
    public ListKeyPair(long id, X509Certificate2 certificate, AsymmetricAlgorithm privateKey, bool isCurrent, bool isRetired, DateTimeOffset createdAt)
    {
        Id = id;
        Certificate = certificate;
        PrivateKey = privateKey;
        IsCurrent = isCurrent;
        IsRetired = isRetired;
        CreatedAt = createdAt;
    }

    public long Id { get; }

    public X509Certificate2 Certificate { get; }

    public AsymmetricAlgorithm PrivateKey { get; }

    public bool IsCurrent { get; }

    public bool IsRetired { get; }

    public DateTimeOffset CreatedAt { get; }

    public void Dispose()
    {
        PrivateKey.Dispose();
        Certificate.Dispose();
    }
}
