using System.Text.Json;
using System.Text.Json.Serialization;

namespace MilterSecureList.KeyRelease;

/// <summary>POST /v1/deposit (docs/key-release.md §4.1). Binary fields travel as base64.</summary>
public sealed class DepositRequest
{
    public byte[] MessageId { get; set; } = [];

    public byte[] KeyId { get; set; } = [];

    /// <summary>DER ReleasePolicy.</summary>
    public byte[] Policy { get; set; } = [];

    public byte[] Binding { get; set; } = [];

    public int KeyLength { get; set; }

    /// <summary>The key material wrapped to the key server's release certificate (a DER RecipientInfo).</summary>
    public byte[] KeyRecipientInfo { get; set; } = [];

    /// <summary>Double-wrap lists: the DER ListKeyIdentifier of the post; absent for rekey lists.</summary>
    public byte[]? ListKeyId { get; set; }
}

/// <summary>POST /v1/release: the member's signed request (DER ContentInfo SignedData).</summary>
public sealed class ReleaseHttpRequest
{
    public byte[] Request { get; set; } = [];
}

/// <summary>The answer to a granted release.</summary>
public sealed class ReleaseHttpResponse
{
    /// <summary>The member's RecipientInfo (DER): ktri, kari, or a double-wrap ori.</summary>
    public byte[] RecipientInfo { get; set; } = [];

    public bool FirstRelease { get; set; }
}

/// <summary>Every refusal and error body: one fixed text per status, never which check failed.</summary>
public sealed class ErrorResponse
{
    public string Error { get; set; } = "";
}

/// <summary>The JSON shape both sides use (camelCase, no comments, no trailing commas, bounded depth).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, MaxDepth = 8)]
[JsonSerializable(typeof(DepositRequest))]
[JsonSerializable(typeof(ReleaseHttpRequest))]
[JsonSerializable(typeof(ReleaseHttpResponse))]
[JsonSerializable(typeof(ErrorResponse))]
public sealed partial class KeyReleaseJson : JsonSerializerContext
{
}
