using System.Diagnostics.CodeAnalysis;

namespace MilterSecureList.Mime;

/// <summary>
/// A parsed Content-Type value: <c>type "/" subtype *(";" parameter)</c> (RFC 2045 §5.1) with
/// comments, quoted strings and RFC 2231 parameter continuations and charsets. Type, subtype and
/// parameter names are case-insensitive and stored in lower case; parameter values keep their case.
/// </summary>
public sealed class ContentType
{
    private readonly Dictionary<string, string> _parameters;

    private ContentType(string mediaType, string mediaSubtype, Dictionary<string, string> parameters)
    {
        MediaType = mediaType;
        MediaSubtype = mediaSubtype;
        _parameters = parameters;
    }

    /// <summary>The top-level type in lower case, e.g. <c>application</c>.</summary>
    public string MediaType { get; }

    /// <summary>The subtype in lower case, e.g. <c>pkcs7-mime</c>.</summary>
    public string MediaSubtype { get; }

    /// <summary><c>type/subtype</c> in lower case.</summary>
    public string MimeType => MediaType + "/" + MediaSubtype;

    /// <summary>Parameters after RFC 2231 reassembly; lookups ignore case.</summary>
    public IReadOnlyDictionary<string, string> Parameters => _parameters;

    public string? GetParameter(string name) => _parameters.TryGetValue(name, out string? value) ? value : null;

    public bool IsMimeType(string mediaType, string mediaSubtype) =>
        string.Equals(MediaType, mediaType, StringComparison.OrdinalIgnoreCase)
        && string.Equals(MediaSubtype, mediaSubtype, StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses a header value (folded or not). Never throws.</summary>
    public static bool TryParse(string? value, [NotNullWhen(true)] out ContentType? contentType)
    {
        contentType = null;
        if (value is null)
        {
            return false;
        }

        var parser = new MimeParameterParser(MimeParameterParser.Unfold(value));
        if (!parser.SkipCfws())
        {
            return false;
        }

        string type = parser.ReadToken();
        if (type.Length == 0 || !parser.SkipCfws() || !parser.TryConsume('/') || !parser.SkipCfws())
        {
            return false;
        }

        string subtype = parser.ReadToken();
        if (subtype.Length == 0 || !parser.TryReadParameters(out var parameters))
        {
            return false;
        }

        contentType = new ContentType(type.ToLowerInvariant(), subtype.ToLowerInvariant(), parameters);
        return true;
    }

    /// <summary>Parses a header value or throws <see cref="MimeFormatException"/> with reason <see cref="MimeErrorReason.InvalidContentType"/>.</summary>
    public static ContentType Parse(string value)
    {
        if (!TryParse(value, out ContentType? contentType))
        {
            throw MimeFormatException.Create(MimeErrorReason.InvalidContentType, $"invalid Content-Type '{Abbreviate(value)}'");
        }

        return contentType;
    }

    public override string ToString() =>
        MimeType + string.Concat(_parameters.Select(p => "; " + p.Key + "=\"" + p.Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\""));

    internal static string Abbreviate(string value)
    {
        string oneLine = value.Replace('\r', ' ').Replace('\n', ' ');
        return oneLine.Length <= 80 ? oneLine : oneLine[..77] + "...";
    }
}

/// <summary>A parsed Content-Disposition value (RFC 2183) with the same parameter rules as <see cref="ContentType"/>.</summary>
public sealed class ContentDisposition
{
    private readonly Dictionary<string, string> _parameters;

    private ContentDisposition(string disposition, Dictionary<string, string> parameters)
    {
        Disposition = disposition;
        _parameters = parameters;
    }

    /// <summary><c>attachment</c>, <c>inline</c>, ... in lower case.</summary>
    public string Disposition { get; }

    public IReadOnlyDictionary<string, string> Parameters => _parameters;

    public string? FileName => GetParameter("filename");

    public string? GetParameter(string name) => _parameters.TryGetValue(name, out string? value) ? value : null;

    public static bool TryParse(string? value, [NotNullWhen(true)] out ContentDisposition? disposition)
    {
        disposition = null;
        if (value is null)
        {
            return false;
        }

        var parser = new MimeParameterParser(MimeParameterParser.Unfold(value));
        if (!parser.SkipCfws())
        {
            return false;
        }

        string token = parser.ReadToken();
        if (token.Length == 0 || !parser.TryReadParameters(out var parameters))
        {
            return false;
        }

        disposition = new ContentDisposition(token.ToLowerInvariant(), parameters);
        return true;
    }
}
