using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MilterSecureList.Configuration;
using MilterSecureList.KeyRelease;
using MilterSecureList.Mime;
using MimeKit;
using MimeKit.Text;

namespace MilterSecureList.KeyServer;

/// <summary>keyd.ini <c>[Notices]</c>: where receipts are submitted (docs/key-release.md §7).</summary>
public sealed class ReceiptOptions
{
    public bool Enabled { get; init; } = true;

    /// <summary>HOST:PORT of the local MTA (plain SMTP).</summary>
    public string SmtpServer { get; init; } = "127.0.0.1:25";

    /// <summary>The From: header (the envelope sender is always &lt;&gt;).</summary>
    public string From { get; init; } = "securelist-keyd@localhost";
}

/// <summary>
/// Mails release receipts off the release path: a bounded queue (full means dropped and logged, never a slow release) and
/// one worker submitting each receipt with MailKit to the local MTA, envelope sender &lt;&gt; so a receipt can neither
/// bounce nor loop. Each receipt is a multipart/signed (RFC 8551 §3.5) signed with the release key: the reader of a
/// receipt checks it against the key server's release certificate.
/// </summary>
public sealed class ReceiptMailer : IReleaseReceipts, IAsyncDisposable
{
    private readonly ReceiptOptions _options;
    private readonly X509Certificate2 _signer;
    private readonly ILogger _logger;
    private readonly Channel<ReleaseReceipt> _queue =
        Channel.CreateBounded<ReleaseReceipt>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly Task _worker;

    /// <param name="signer">The release certificate with its private key (the caller keeps and disposes it).</param>
    public ReceiptMailer(ReceiptOptions options, X509Certificate2 signer, ILogger logger)
    {
        _options = options;
        _signer = signer;
        _logger = logger;
        _worker = Task.Run(RunAsync);
    }

    public void Enqueue(ReleaseReceipt receipt)
    {
        if (!_options.Enabled)
        {
            return;
        }

        if (!_queue.Writer.TryWrite(receipt))
        {
            ReceiptLog.Failed(_logger, receipt.MessageId, receipt.Member, Printable(receipt.Recipient), "queue full");
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        await foreach (ReleaseReceipt receipt in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await SendAsync(Compose(receipt), receipt.Recipient).ConfigureAwait(false);
                ReceiptLog.Sent(_logger, receipt.MessageId, receipt.Member, receipt.Recipient);
            }
            catch (Exception e) when (LocalSubmission.IsSendFailure(e) || e is CryptographicException)
            {
                ReceiptLog.Failed(_logger, receipt.MessageId, receipt.Member, Printable(receipt.Recipient), Printable(e.Message));
            }
        }
    }

    /// <summary>The receipt message: its text, signed detached with the release key.</summary>
    public MimeMessage Compose(ReleaseReceipt receipt)
    {
        string time = receipt.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var text = new TextPart(TextFormat.Plain)
        {
            Text = $"""
                The key server released the key of a post to a member for the first time.

                Release message id: {receipt.MessageId}
                List: {receipt.List}
                Member: {receipt.Member}
                Time: {time}

                This receipt is signed with the key server's release certificate.

                """,
        };
        // 7bit when the text allows (it is ASCII unless an address is not), so the signed text reads as it is.
        text.ContentTransferEncoding = text.GetBestEncoding(EncodingConstraint.SevenBit);
        var message = new MimeMessage
        {
            Subject = $"[{receipt.List}] receipt: {receipt.Member} fetched the key of a post",
            Date = receipt.Time,
            Body = Sign(text),
        };
        message.From.Add(MailboxAddress.Parse(_options.From));
        message.To.Add(MailboxAddress.Parse(receipt.Recipient));
        message.Headers.Add("Auto-Submitted", "auto-generated"); // RFC 3834 §5
        return message;
    }

    private Multipart Sign(MimeEntity content)
    {
        // Sign the exact canonical (CRLF) bytes and put back the entity parsed from those bytes, so what is written is
        // what was signed.
        using var canonical = new MemoryStream();
        FormatOptions format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        content.WriteTo(format, canonical);
        byte[] bytes = canonical.ToArray();
        canonical.Position = 0;
        MimeEntity signedPart = MimeEntity.Load(canonical);

        var cms = new SignedCms(new ContentInfo(new Oid(MilterSecureList.Cms.Oids.KeyReleaseReceipt), bytes), detached: true);
        var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, _signer)
        {
            DigestAlgorithm = new Oid(MilterSecureList.Cms.Oids.Sha256),
            IncludeOption = X509IncludeOption.EndCertOnly,
        };
        signer.SignedAttributes.Add(new Pkcs9SigningTime(DateTime.UtcNow));
        cms.ComputeSignature(signer);

        var signature = new MimePart("application", "pkcs7-signature")
        {
            Content = new MimeContent(new MemoryStream(cms.Encode())),
            ContentTransferEncoding = ContentEncoding.Base64,
            ContentDisposition = new ContentDisposition(ContentDisposition.Attachment) { FileName = "smime.p7s" },
        };
        signature.ContentType.Name = "smime.p7s";
        var multipart = new Multipart("signed") { signedPart, signature };
        multipart.ContentType.Parameters.Add("protocol", "application/pkcs7-signature");
        multipart.ContentType.Parameters.Add("micalg", "sha-256");
        return multipart;
    }

    /// <summary>The sender's address comes from outside: control characters would forge log lines.</summary>
    private static string Printable(string text) => string.Create(text.Length, text, static (span, t) =>
    {
        for (int i = 0; i < t.Length; i++)
        {
            span[i] = char.IsControl(t[i]) ? '?' : t[i];
        }
    });

    private async Task SendAsync(MimeMessage message, string recipient)
    {
        if (!HostPort.TryParse(_options.SmtpServer, out string host, out int port))
        {
            throw new InvalidOperationException($"[Notices] SmtpServer '{_options.SmtpServer}' is not HOST:PORT");
        }

        await LocalSubmission.SendAsync(host, port, message, recipient).ConfigureAwait(false);
    }
}

internal static partial class ReceiptLog
{
    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "receipt {MessageId} member={Member} sent to {Recipient}")]
    public static partial void Sent(ILogger logger, string messageId, string member, string recipient);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "receipt {MessageId} member={Member} to {Recipient} not sent: {Problem}")]
    public static partial void Failed(ILogger logger, string messageId, string member, string recipient, string problem);
}
