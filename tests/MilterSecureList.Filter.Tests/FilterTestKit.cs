using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Directory;

namespace MilterSecureList.Filter.Tests;

/// <summary>An in-memory directory for unit tests (fakes only in unit tests; the end-to-end suite uses SQLite).</summary>
internal sealed class FakeDirectory : IListDirectory
{
    public Dictionary<string, MailingList> Lists { get; } = new(StringComparer.OrdinalIgnoreCase);

    public Dictionary<string, List<ExpandedMember>> Members { get; } = new(StringComparer.OrdinalIgnoreCase);

    public Dictionary<string, List<ListKeyPair>> Keys { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Simulates an unreachable database.</summary>
    public bool Unavailable { get; set; }

    public long Generation { get; set; } = 1;

    public bool TryGetList(string address, out MailingList list)
    {
        if (Unavailable)
        {
            throw new DirectoryException(DirectoryError.Unavailable, "database is locked");
        }

        return Lists.TryGetValue(address, out list!);
    }

    public ExpandedList Expand(string listAddress)
    {
        if (Unavailable)
        {
            throw new DirectoryException(DirectoryError.Unavailable, "database is locked");
        }

        return new ExpandedList(Lists[listAddress], Members[listAddress], []);
    }

    public IReadOnlyList<ListKeyPair> GetListKeys(string listAddress) => Keys[listAddress];
}

/// <summary>Keys, certificates and S/MIME messages made at test time (RSA-2048, S/MIME extensions).</summary>
internal static class FilterTestKit
{
    private static readonly Dictionary<string, X509Certificate2> s_certs = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A self-signed S/MIME certificate with its private key, cached per address (key generation is slow).</summary>
    public static X509Certificate2 Certificate(string address)
    {
        lock (s_certs)
        {
            if (!s_certs.TryGetValue(address, out X509Certificate2? cert))
            {
                using RSA rsa = RSA.Create(2048);
                var request = new CertificateRequest($"CN={address}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                var san = new SubjectAlternativeNameBuilder();
                san.AddEmailAddress(address);
                request.CertificateExtensions.Add(san.Build());
                request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DigitalSignature, true));
                cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
                s_certs[address] = cert;
            }

            return cert;
        }
    }

    public static X509Certificate2 PublicOnly(string address) => X509CertificateLoader.LoadCertificate(Certificate(address).RawData);

    public static ExpandedMember Member(string address, CertificateStatus status = CertificateStatus.Usable, bool selfCopy = true, bool delivery = true, bool oaep = false) =>
        new(address, status == CertificateStatus.Missing ? null : PublicOnly(address), oaep, selfCopy, delivery, status,
            status == CertificateStatus.Usable ? null : $"certificate {status.ToString().ToLowerInvariant()}", address);

    public static FakeDirectory NewDirectory(string list, ListMode mode = ListMode.Rekey, PostingPolicy posting = PostingPolicy.Open,
        IReadOnlyDictionary<string, string>? options = null, params ExpandedMember[] members)
    {
        var d = new FakeDirectory();
        Add(d, list, mode, posting, options, members);
        return d;
    }

    public static void Add(FakeDirectory d, string list, ListMode mode = ListMode.Rekey, PostingPolicy posting = PostingPolicy.Open,
        IReadOnlyDictionary<string, string>? options = null, params ExpandedMember[] members)
    {
        d.Lists[list] = new MailingList(list, mode, "owner@example.org", posting, options ?? MailingList.NoOptions);
        d.Members[list] = [.. members];
        X509Certificate2 listCert = Certificate(list);
        d.Keys[list] = [new ListKeyPair(1, PublicOnly(list), listCert.GetRSAPrivateKey()!, isCurrent: true, isRetired: false, DateTimeOffset.UtcNow)];
    }

    public static readonly byte[] Entity = Encoding.ASCII.GetBytes("Content-Type: text/plain; charset=us-ascii\r\n\r\nThe meeting moved to Thursday.\r\n");

    /// <summary>What an S/MIME client sends: the entity encrypted (EnvelopedCms, AES-256-CBC, PKCS#1 v1.5) to the given certificates.</summary>
    public static byte[] Encrypt(params string[] recipients)
    {
        var cms = new EnvelopedCms(new ContentInfo(Entity));
        var collection = new CmsRecipientCollection();
        foreach (string r in recipients)
        {
            collection.Add(new CmsRecipient(PublicOnly(r)));
        }

        cms.Encrypt(collection);
        return cms.Encode();
    }

    public static IReadOnlyList<HeaderField> SmimeHeaders { get; } =
    [
        new("From", "alice@example.org"),
        new("Subject", "meeting"),
        new("MIME-Version", "1.0"),
        new("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data;\n\tname=smime.p7m"),
        new("Content-Transfer-Encoding", "base64"),
    ];

    public static IReadOnlyList<HeaderField> PlainHeaders { get; } =
    [
        new("From", "alice@example.org"),
        new("Subject", "meeting"),
        new("Content-Type", "text/plain"),
    ];

    // The replacement body is encoded while it is read, once, as the protocol layer reads it; tests look at it many times.
    private static readonly ConditionalWeakTable<Stream, byte[]> s_bodies = new();

    /// <summary>The bytes of a replacement body (read once, then remembered).</summary>
    public static byte[] BodyBytes(Stream body) => s_bodies.GetValue(body, b =>
    {
        using var copy = new MemoryStream();
        if (b.CanSeek)
        {
            b.Position = 0;
        }

        b.CopyTo(copy);
        return copy.ToArray();
    });

    public static MemoryStream Base64Body(byte[] der) => new(Encoding.ASCII.GetBytes(Convert.ToBase64String(der, Base64FormattingOptions.InsertLineBreaks) + "\r\n"));

    /// <summary>Decrypts a re-keyed body with a member's private key (EnvelopedCms: an independent oracle).</summary>
    public static byte[] DecryptAs(Stream body, string member)
    {
        var cms = new EnvelopedCms();
        cms.Decode(Convert.FromBase64String(Encoding.ASCII.GetString(BodyBytes(body))));
        cms.Decrypt(new X509Certificate2Collection(Certificate(member)));
        return cms.ContentInfo.Content;
    }
}
