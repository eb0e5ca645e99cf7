using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace MilterSecureList.KeyRelease;

/// <summary>The key server could not be asked (unreachable, TLS refused, timeout, an answer outside the protocol).</summary>
public sealed class KeyServerUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// HTTPS client of the key server for the milter (deposit, with its client certificate) and the reader (release).
/// The server's certificate must chain to one of <c>trust</c> (a CA, or the pinned server certificate itself) and
/// match the host name; without <c>trust</c> the system's trust store decides.
/// </summary>
public sealed class KeyReleaseClient : IDisposable
{
    private readonly HttpClient _http;

    public KeyReleaseClient(X509Certificate2Collection? trust, X509Certificate2? clientCertificate, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, chain, errors) => IsTrusted(certificate, chain, errors, trust),
            },
        };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = new X509CertificateCollection { clientCertificate };
        }

        _http = new HttpClient(handler) { Timeout = timeout };
    }

    /// <summary>Deposits a post's key material; returns normally only when the key server stored it (201 or 200).</summary>
    /// <exception cref="KeyServerUnavailableException">Anything else: the milter tempfails the post.</exception>
    public async Task DepositAsync(Uri server, DepositRequest request, CancellationToken cancellationToken)
    {
        HttpResponseMessage response = await SendAsync(new Uri(server, "v1/deposit"), JsonContent.Create(request, KeyReleaseJson.Default.DepositRequest), cancellationToken).ConfigureAwait(false);
        using (response)
        {
            if (response.StatusCode is not (HttpStatusCode.Created or HttpStatusCode.OK))
            {
                throw new KeyServerUnavailableException($"key server {server} refused the deposit: HTTP {(int)response.StatusCode}");
            }
        }
    }

    /// <summary>Asks for a key: the member's RecipientInfo, or null when the key server refused (403).</summary>
    /// <exception cref="KeyServerUnavailableException">Unreachable, or an answer outside the protocol.</exception>
    public async Task<ReleaseHttpResponse?> ReleaseAsync(Uri server, byte[] signedRequest, CancellationToken cancellationToken)
    {
        var body = new ReleaseHttpRequest { Request = signedRequest };
        HttpResponseMessage response = await SendAsync(new Uri(server, "v1/release"), JsonContent.Create(body, KeyReleaseJson.Default.ReleaseHttpRequest), cancellationToken).ConfigureAwait(false);
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.Forbidden)
            {
                return null;
            }

            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new KeyServerUnavailableException($"key server {server} answered HTTP {(int)response.StatusCode}");
            }

            try
            {
                ReleaseHttpResponse? reply = await response.Content.ReadFromJsonAsync(KeyReleaseJson.Default.ReleaseHttpResponse, cancellationToken).ConfigureAwait(false);
                return reply is { RecipientInfo.Length: > 0 } ? reply : throw new KeyServerUnavailableException($"key server {server} sent an empty answer");
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new KeyServerUnavailableException($"key server {server} sent malformed JSON: {e.Message}", e);
            }
        }
    }

    private async Task<HttpResponseMessage> SendAsync(Uri uri, HttpContent content, CancellationToken cancellationToken)
    {
        if (uri.Scheme != Uri.UriSchemeHttps)
        {
            throw new KeyServerUnavailableException($"key server URL {uri} is not https");
        }

        try
        {
            return await _http.PostAsync(uri, content, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new KeyServerUnavailableException($"key server {uri.GetLeftPart(UriPartial.Authority)} unreachable: {OneLine(e)}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KeyServerUnavailableException($"key server {uri.GetLeftPart(UriPartial.Authority)} did not answer in time", e);
        }
    }

    private static string OneLine(Exception e) =>
        (e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message).ReplaceLineEndings(" ");

    /// <summary>Host name must match; the chain must end in one of <paramref name="trust"/>, or the certificate be one of them.</summary>
    internal static bool IsTrusted(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors, X509Certificate2Collection? trust)
    {
        if (certificate is null)
        {
            return false;
        }

        if (trust is null || trust.Count == 0)
        {
            return errors == SslPolicyErrors.None;
        }

        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        foreach (X509Certificate2 anchor in trust)
        {
            if (anchor.RawData.AsSpan().SequenceEqual(leaf.RawData))
            {
                return true;
            }
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (X509ChainElement element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(leaf);
    }

    public void Dispose() => _http.Dispose();
}
