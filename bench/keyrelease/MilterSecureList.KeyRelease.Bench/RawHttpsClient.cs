using System.Buffers.Text;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using MilterSecureList.KeyRelease;

/// <summary>
/// The load generator's client, as lean as wrk's: HTTP/1.1 keep-alive over one TLS connection per client, each request
/// written whole (headers and pre-serialised body in one TLS record), the answer read by its Content-Length. Every
/// answer is still checked to be a release: status 200 and a JSON body carrying a RecipientInfo.
/// </summary>
internal sealed class RawHttpsClient : IAsyncDisposable
{
    private readonly Channel<Connection> _idle;
    private readonly Connection[] _all;

    private RawHttpsClient(Connection[] all)
    {
        _all = all;
        _idle = Channel.CreateUnbounded<Connection>();
        foreach (Connection c in all)
        {
            _idle.Writer.TryWrite(c);
        }
    }

    /// <summary>Opens <paramref name="connections"/> TLS connections (handshakes done before any request).</summary>
    public static async Task<RawHttpsClient> OpenAsync(Uri uri, X509Certificate2 trusted, int connections)
    {
        byte[] head = Encoding.ASCII.GetBytes($"POST {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Type: application/json\r\nContent-Length: ");
        Connection[] all = await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Connection.OpenAsync(uri, trusted, head))).ConfigureAwait(false);
        return new RawHttpsClient(all);
    }

    /// <summary>Sends one body on an idle connection (waiting for one when all are busy); true when it was released.</summary>
    /// <summary>What the connections negotiated (all alike): protocol and cipher suite.</summary>
    public string Negotiated => $"{_all[0].Tls.SslProtocol} {_all[0].Tls.NegotiatedCipherSuite}";

    public async Task<bool> PostAsync(byte[] body)
    {
        Connection c = await _idle.Reader.ReadAsync().ConfigureAwait(false);
        try
        {
            return await c.PostAsync(body).ConfigureAwait(false);
        }
        finally
        {
            _idle.Writer.TryWrite(c);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (Connection c in _all)
        {
            await c.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class Connection : IAsyncDisposable
    {
        private static readonly byte[] HeaderEnd = "\r\n\r\n"u8.ToArray();
        private static readonly byte[] ContentLength = "\r\ncontent-length:"u8.ToArray();

        private readonly TcpClient _tcp;
        private readonly SslStream _tls;
        private readonly byte[] _head;
        private byte[] _out = new byte[8192];
        private byte[] _in = new byte[16384];
        private int _served;
        private string? _lastRefusal;

        public SslStream Tls => _tls;

        private Connection(TcpClient tcp, SslStream tls, byte[] head)
        {
            _tcp = tcp;
            _tls = tls;
            _head = head;
        }

        public static async Task<Connection> OpenAsync(Uri uri, X509Certificate2 trusted, byte[] head)
        {
            var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync(uri.Host, uri.Port).ConfigureAwait(false);
            var tls = new SslStream(tcp.GetStream(), false, (_, c, _, _) => c is not null && c.GetRawCertData().AsSpan().SequenceEqual(trusted.RawData));
            await tls.AuthenticateAsClientAsync(uri.Host).ConfigureAwait(false);
            return new Connection(tcp, tls, head);
        }

        public async Task<bool> PostAsync(byte[] body)
        {
            int length = _head.Length + 16 + body.Length;
            if (_out.Length < length)
            {
                _out = new byte[length * 2];
            }

            _head.CopyTo(_out, 0);
            int n = _head.Length;
            Utf8Formatter.TryFormat(body.Length, _out.AsSpan(n), out int digits);
            n += digits;
            "\r\n\r\n"u8.CopyTo(_out.AsSpan(n));
            n += 4;
            body.CopyTo(_out, n);
            n += body.Length;
            await _tls.WriteAsync(_out.AsMemory(0, n)).ConfigureAwait(false);

            int filled = 0, headerEnd;
            while ((headerEnd = _in.AsSpan(0, filled).IndexOf(HeaderEnd)) < 0)
            {
                filled = await FillAsync(filled).ConfigureAwait(false);
            }

            int bodyStart = headerEnd + HeaderEnd.Length;
            int bodyLength = BodyLength(_in.AsSpan(0, headerEnd));
            while (filled < bodyStart + bodyLength)
            {
                filled = await FillAsync(filled).ConfigureAwait(false);
            }

            if (filled != bodyStart + bodyLength)
            {
                throw new InvalidOperationException("the key server answered more than was asked");
            }

            bool released = _in.AsSpan(0, 13).SequenceEqual("HTTP/1.1 200 "u8)
                && JsonSerializer.Deserialize(_in.AsSpan(bodyStart, bodyLength), KeyReleaseJson.Default.ReleaseHttpResponse) is { RecipientInfo.Length: > 0 };
            _served++;
            if (!released)
            {
                // Kept for the error should the key server then close the connection (a 400 or 500 closes it).
                _lastRefusal = Encoding.ASCII.GetString(_in, 0, Math.Min(filled, 300)).ReplaceLineEndings(" | ");
            }

            return released;
        }

        private async Task<int> FillAsync(int filled)
        {
            if (filled == _in.Length)
            {
                Array.Resize(ref _in, _in.Length * 2);
            }

            int read = await _tls.ReadAsync(_in.AsMemory(filled)).ConfigureAwait(false);
            return read > 0 ? filled + read : throw new IOException(
                $"the key server closed the connection after {_served} answers on it" + (_lastRefusal is { } last ? $"; its last answer other than a release: {last}" : ""));
        }

        private static int BodyLength(ReadOnlySpan<byte> headers)
        {
            Span<byte> lower = headers.Length <= 1024 ? stackalloc byte[headers.Length] : new byte[headers.Length];
            Ascii.ToLower(headers, lower, out _);
            int at = lower.IndexOf(ContentLength);
            if (at < 0)
            {
                throw new InvalidOperationException("the key server's answer has no Content-Length");
            }

            ReadOnlySpan<byte> value = lower[(at + ContentLength.Length)..];
            int end = value.IndexOf("\r\n"u8);
            value = value[..(end >= 0 ? end : value.Length)].Trim((byte)' ');
            return Utf8Parser.TryParse(value, out int length, out int used) && used == value.Length ? length
                : throw new InvalidOperationException("the key server's Content-Length is not a number");
        }

        public async ValueTask DisposeAsync()
        {
            await _tls.DisposeAsync().ConfigureAwait(false);
            _tcp.Dispose();
        }
    }
}
