using System.Security.Cryptography.X509Certificates;
using MilterSecureList.Cms.Asn1;

namespace MilterSecureList.Cms;

/// <summary>One RecipientInfo as seen by <see cref="SessionKeyRewrapper.Inspect"/>.</summary>
public sealed class CmsRecipientIdentifier
{
    internal CmsRecipientIdentifier(RecipientInfoKind kind, RecipientIdentifierAsn? rid, string? oriType)
    {
        Kind = kind;
        OriType = oriType;
        if (rid is { } r)
        {
            Rid = r;
            if (r.IssuerAndSerialNumber is { } iasn)
            {
                try
                {
                    Issuer = new X500DistinguishedName(iasn.Issuer.Span).Name;
                }
                catch (System.Security.Cryptography.CryptographicException)
                {
                    Issuer = "(unparsable issuer)";
                }

                SerialNumber = Convert.ToHexString(iasn.SerialNumber.Span);
            }
            else
            {
                SubjectKeyIdentifier = Convert.ToHexString(r.SubjectKeyIdentifier!.Value.Span);
            }
        }
    }

    public RecipientInfoKind Kind { get; }

    /// <summary>Issuer DN (RFC 4514-ish text) when the rid is issuerAndSerialNumber.</summary>
    public string? Issuer { get; }

    /// <summary>Serial number as upper-case hex when the rid is issuerAndSerialNumber.</summary>
    public string? SerialNumber { get; }

    /// <summary>Subject key identifier as upper-case hex when the rid is subjectKeyIdentifier.</summary>
    public string? SubjectKeyIdentifier { get; }

    /// <summary>oriType for OtherRecipientInfo.</summary>
    public string? OriType { get; }

    internal RecipientIdentifierAsn? Rid { get; }

    /// <summary>True when this identifier names <paramref name="certificate"/>.</summary>
    public bool Names(X509Certificate2 certificate) =>
        Rid is { } r && r.Matches(certificate, RecipientIdentifierAsn.GetSubjectKeyIdentifier(certificate),
            RecipientIdentifierAsn.GetPublicKeySha1(certificate), RecipientIdentifierAsn.GetPublicKeyInfoSha1(certificate));

    public override string ToString() => Kind switch
    {
        RecipientInfoKind.Other when Issuer is not null => $"ori {OriType} outer issuer=\"{Issuer}\" serial={SerialNumber}",
        RecipientInfoKind.Other when SubjectKeyIdentifier is not null => $"ori {OriType} outer ski={SubjectKeyIdentifier}",
        RecipientInfoKind.Other => $"ori {OriType}",
        _ when Issuer is not null => $"{Kind} issuer=\"{Issuer}\" serial={SerialNumber}",
        _ when SubjectKeyIdentifier is not null => $"{Kind} ski={SubjectKeyIdentifier}",
        _ => Kind.ToString(),
    };
}

/// <summary>A cheap look at a ContentInfo without any private-key work.</summary>
public sealed class CmsEnvelopeInfo
{
    internal CmsEnvelopeInfo(string contentType, int version, string? contentEncryptionAlgorithm, IReadOnlyList<CmsRecipientIdentifier> recipients)
    {
        ContentType = contentType;
        Version = version;
        ContentEncryptionAlgorithm = contentEncryptionAlgorithm;
        Recipients = recipients;
    }

    public string ContentType { get; }

    public bool IsEnvelopedData => ContentType == Oids.EnvelopedData;

    public bool IsAuthEnvelopedData => ContentType == Oids.AuthEnvelopedData;

    /// <summary>Enveloped or AuthEnveloped.</summary>
    public bool IsEncrypted => IsEnvelopedData || IsAuthEnvelopedData;

    public int Version { get; }

    public string? ContentEncryptionAlgorithm { get; }

    /// <summary>One entry per RecipientInfo (for kari, one per RecipientEncryptedKey), input order.</summary>
    public IReadOnlyList<CmsRecipientIdentifier> Recipients { get; }

    /// <summary>True when an OtherRecipientInfo of the project's double-wrap type is present.</summary>
    public bool HasDoubleWrap => Recipients.Any(r => r.OriType == Oids.DoubleWrapOri);

    /// <summary>The first list key named by a RecipientInfo, or null ("not encrypted to the list key").</summary>
    public ListKey? FindListKey(IReadOnlyList<ListKey> listKeys)
    {
        ArgumentNullException.ThrowIfNull(listKeys);
        foreach (CmsRecipientIdentifier r in Recipients)
        {
            if (r.Rid is { } rid)
            {
                foreach (ListKey k in listKeys)
                {
                    if (k.Matches(rid))
                    {
                        return k;
                    }
                }
            }
        }

        return null;
    }
}
