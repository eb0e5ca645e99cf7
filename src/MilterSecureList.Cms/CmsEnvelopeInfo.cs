using System.Runtime.CompilerServices;
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
                Issuer = iasn.IssuerText;
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

/// <summary>A parsed ContentInfo: what the filter looks at before any private-key work (content type, recipients,
/// double-wrap presence) and what <see cref="SessionKeyRewrapper.Rewrap(CmsEnvelopeInfo, IReadOnlyList{ListKey}, IReadOnlyList{CmsRecipient}, CmsRewrapOptions?)"/>
/// and <see cref="DoubleWrap.Rewrap(CmsEnvelopeInfo, IReadOnlyList{ListKey}, IReadOnlyList{CmsRecipient}, CmsRewrapOptions?)"/>
/// re-wrap. The message is parsed once; the engines work on this object and never read the raw bytes again
/// (docs/design.md, "One parse per message").</summary>
/// <remarks>The parsed parts are slices of the input: the caller keeps the input unchanged while the object is in use.
/// Not for concurrent use by several threads.</remarks>
public sealed class CmsEnvelopeInfo
{
    private readonly ContentInfoAsn _contentInfo;
    private readonly EnvelopedDataAsn? _enveloped;
    private DoubleWrapRecipientInfoAsn?[]? _doubleWraps;
    private IReadOnlyList<CmsRecipientIdentifier>? _recipients;

    /// <summary>Counts the parses of the current async flow while a test sets it; null (nothing counted) otherwise.
    /// The filter's tests hold the one-parse rule with it.</summary>
    internal static readonly AsyncLocal<StrongBox<int>?> ParseCounter = new();

    private CmsEnvelopeInfo(ContentInfoAsn contentInfo, EnvelopedDataAsn? enveloped)
    {
        _contentInfo = contentInfo;
        _enveloped = enveloped;
    }

    public string ContentType => _contentInfo.ContentType;

    public bool IsEnvelopedData => ContentType == Oids.EnvelopedData;

    public bool IsAuthEnvelopedData => ContentType == Oids.AuthEnvelopedData;

    /// <summary>Enveloped or AuthEnveloped.</summary>
    public bool IsEncrypted => IsEnvelopedData || IsAuthEnvelopedData;

    /// <summary>The CMSVersion of the input, or -1 when it is not (Auth)EnvelopedData.</summary>
    public int Version => _enveloped?.Version ?? -1;

    public string? ContentEncryptionAlgorithm => _enveloped?.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm;

    /// <summary>One entry per RecipientInfo (for kari, one per RecipientEncryptedKey), input order.</summary>
    public IReadOnlyList<CmsRecipientIdentifier> Recipients => _recipients ??= ListRecipients();

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

    /// <summary>The EnvelopedData or AuthEnvelopedData; a typed failure for any other content type.</summary>
    internal EnvelopedDataAsn Enveloped => _enveloped ?? throw new CmsRewrapException(CmsRewrapFailure.NotEnvelopedData,
        $"the CMS content type is {ContentType}, not EnvelopedData or AuthEnvelopedData");

    internal bool IsDoubleWrapAt(int index) =>
        Enveloped.RecipientInfos[index] is { Kind: RecipientInfoKind.Other, OriType: Oids.DoubleWrapOri };

    /// <summary>The decoded double-wrap RecipientInfo at <paramref name="index"/> (decoded once, on first use).</summary>
    internal DoubleWrapRecipientInfoAsn DoubleWrapAt(int index)
    {
        _doubleWraps ??= new DoubleWrapRecipientInfoAsn?[Enveloped.RecipientInfos.Count];
        return _doubleWraps[index] ??= DecoderBoundary.Decode(Enveloped.RecipientInfos[index].OriValue,
            DoubleWrapRecipientInfoAsn.Decode, "malformed double-wrap RecipientInfo");
    }

    /// <summary>Parse a ContentInfo (DER or BER) within the size and RecipientInfo limits of <paramref name="options"/>.
    /// Any other content type parses too (<see cref="IsEncrypted"/> is false); only (Auth)EnvelopedData is decoded further.</summary>
    /// <exception cref="CmsRewrapException">Malformed, unsupported, or beyond a limit.</exception>
    internal static CmsEnvelopeInfo Parse(ReadOnlyMemory<byte> contentInfo, CmsRewrapOptions? options = null)
    {
        options ??= CmsRewrapOptions.Default;
        if (ParseCounter.Value is { } counter)
        {
            Interlocked.Increment(ref counter.Value);
        }

        if (contentInfo.Length > options.MaxInputBytes)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.LimitExceeded, $"the CMS message is larger than {options.MaxInputBytes} bytes");
        }

        ContentInfoAsn ci = DecoderBoundary.Decode(contentInfo, ContentInfoAsn.Decode, "malformed CMS ContentInfo");
        if (ci.ContentType is not (Oids.EnvelopedData or Oids.AuthEnvelopedData))
        {
            return new CmsEnvelopeInfo(ci, null);
        }

        bool auth = ci.ContentType == Oids.AuthEnvelopedData;
        EnvelopedDataAsn ed = DecoderBoundary.Decode((ci.Content, auth, options.MaxInputRecipientInfos),
            static a => EnvelopedDataAsn.Decode(a.Content, a.auth, a.MaxInputRecipientInfos),
            auth ? "malformed AuthEnvelopedData" : "malformed EnvelopedData");
        return new CmsEnvelopeInfo(ci, ed);
    }

    private List<CmsRecipientIdentifier> ListRecipients()
    {
        var ids = new List<CmsRecipientIdentifier>();
        if (_enveloped is not { } ed)
        {
            return ids;
        }

        for (int i = 0; i < ed.RecipientInfos.Count; i++)
        {
            RecipientInfoAsn ri = ed.RecipientInfos[i];
            if (IsDoubleWrapAt(i))
            {
                // Name the outer layer's recipient (the server or a member), so the filter can match server keys.
                AddRecipients(ids, DoubleWrapAt(i).Outer, ri.OriType);
            }
            else if (ri.Kind is RecipientInfoKind.KeyTransport or RecipientInfoKind.KeyAgreement)
            {
                AddRecipients(ids, ri, null);
            }
            else
            {
                ids.Add(new CmsRecipientIdentifier(ri.Kind, null, ri.OriType));
            }
        }

        return ids;
    }

    private static void AddRecipients(List<CmsRecipientIdentifier> ids, in RecipientInfoAsn ri, string? oriType)
    {
        RecipientInfoKind kind = oriType is null ? ri.Kind : RecipientInfoKind.Other;
        if (ri.KeyTrans is { } ktri)
        {
            ids.Add(new CmsRecipientIdentifier(kind, ktri.Rid, oriType));
            return;
        }

        foreach ((RecipientIdentifierAsn rid, _) in ri.KeyAgree!.Value.RecipientEncryptedKeys)
        {
            ids.Add(new CmsRecipientIdentifier(kind, rid, oriType));
        }
    }
}
