using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Directory;
using MimeKit;
using MimeKit.Cryptography;
using MimeKit.Utils;

namespace MilterSecureList.Admin.DoubleWrap;

/// <summary>A list-key message (docs/double-wrap.md §4): the key file, signed by the list owner and then encrypted to one
/// member's certificate. The signature is what lets a member tell the owner's key from one planted by anyone who has
/// the member's public certificate (the server included); the encryption keeps the key from everyone but the member.
/// <code>
/// RFC 5322 header (From owner, To member, Subject, X-SecureList-ListKey)
/// application/pkcs7-mime; smime-type=enveloped-data          (RFC 8551 §3.3, to the member's certificate)
///   multipart/signed; protocol="application/pkcs7-signature"  (RFC 8551 §3.5.3, RFC 1847)
///     text/plain attachment LIST.EPOCH.key                    (the signed part: the key file)
///     application/pkcs7-signature                             (detached SignedData, SHA-256, owner certificate)
/// </code>
/// Clear-signed inside the envelope so that <c>openssl cms -decrypt</c> shows the key file and
/// <c>openssl cms -verify</c> checks the signature.</summary>
public static class KeyMessage
{
    /// <summary>The whole message for <paramref name="to"/>, ready for <c>sendmail -t</c>.</summary>
    public static byte[] Build(ListKeyFile listKey, string from, string to, X509Certificate2 memberCertificate, X509Certificate2 ownerSigner, DateTimeOffset now)
    {
        RequireHeaderSafe(from);
        RequireHeaderSafe(to);
        byte[] signedEntity = Sign(listKey, ownerSigner);
        try
        {
            byte[] cms = SmimeEntities.EncryptTo(signedEntity, memberCertificate);
            string epoch = listKey.Epoch.ToString(CultureInfo.InvariantCulture);
            Header[] headers =
            [
                new("From", from),
                new("To", to),
                new("Subject", $"List key for {listKey.List}, epoch {epoch}"),
                new("Date", DateUtils.FormatDate(now.ToUniversalTime())),
                new("X-SecureList-ListKey", $"{listKey.List}; epoch={epoch}"),
            ];
            return SmimeEntities.WriteEncrypted(headers, cms, authEnveloped: false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(signedEntity);
        }
    }

    /// <summary>The multipart/signed entity: the key file as a text/plain attachment and the owner's detached signature
    /// over that part's canonical (CRLF) bytes (RFC 8551 §3.1.1). The part is written once; the signature covers those
    /// bytes, and MimeKit writes the same part object into the multipart, so the two cannot differ (the tests check
    /// with openssl cms -verify).</summary>
    public static byte[] Sign(ListKeyFile listKey, X509Certificate2 ownerSigner)
    {
        byte[] text = Encoding.ASCII.GetBytes(listKey.Format().ReplaceLineEndings("\r\n"));
        byte[]? part = null;
        try
        {
            using var multipart = new MultipartSigned();
            multipart.ContentType.Parameters["protocol"] = "application/pkcs7-signature";
            multipart.ContentType.Parameters["micalg"] = "sha-256";
            var keyPart = new MimePart("text", "plain")
            {
                Content = new MimeContent(new MemoryStream(text, writable: false)),
                ContentDisposition = new ContentDisposition(ContentDisposition.Attachment) { FileName = ListKeyDirectory.FileName(listKey.List, listKey.Epoch) },
            };
            keyPart.ContentType.Charset = "us-ascii";
            multipart.Add(keyPart);
            part = SmimeEntities.Serialize((o, s) => keyPart.WriteTo(o, s));
            var signed = new SignedCms(new ContentInfo(part), detached: true);
            signed.ComputeSignature(SmimeEntities.Signer(ownerSigner), silent: true);
            multipart.Add(new ApplicationPkcs7Signature(new MemoryStream(signed.Encode(), writable: false)));
            return SmimeEntities.Serialize((o, s) => multipart.WriteTo(o, s));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(text);
            if (part is not null)
            {
                CryptographicOperations.ZeroMemory(part);
            }
        }
    }

    /// <summary>Reads the decrypted entity of a key message and checks the owner's signature. With
    /// <paramref name="pinnedOwnerOf"/> giving a certificate the signature must verify under exactly that one; without
    /// one (the first key of a list) it must verify under the certificate the message carries, which the caller then pins.</summary>
    /// <exception cref="KeyMessageRefusedException">Not signed, signed by another certificate, or altered.</exception>
    public static SignedListKey Open(byte[] entity, Func<string, X509Certificate2?> pinnedOwnerOf, string source)
    {
        MimeEntity? parsed = null;
        byte[] signedPart = [], signature = [], keyText = [];
        try
        {
            try
            {
                // Persistent: the key text stays in ENTITY (the caller zeroes it) instead of being copied by the parser.
                parsed = MimeEntity.Load(new MemoryStream(entity, writable: false), persistent: true);
            }
            catch (FormatException)
            {
            }

            if (parsed is null || !SmimeEntities.TrySplit(parsed, out signedPart, out signature)
                || parsed is not MultipartSigned { Count: 2 } multipart || multipart[0] is not MimePart keyPart)
            {
                throw new KeyMessageRefusedException($"{source}: the key message is not signed (S/MIME multipart/signed): not from the list owner");
            }

            keyText = SmimeEntities.Decoded(keyPart);
            ListKeyFile key = ListKeyFile.Parse(Encoding.ASCII.GetString(keyText), source);
            try
            {
                X509Certificate2 signer = Verify(signedPart, signature, pinnedOwnerOf(key.List), key.List, source);
                return new SignedListKey(key, signer);
            }
            catch
            {
                key.Dispose();
                throw;
            }
        }
        finally
        {
            parsed?.Dispose();
            CryptographicOperations.ZeroMemory(signedPart);
            CryptographicOperations.ZeroMemory(keyText);
        }
    }

    private static X509Certificate2 Verify(byte[] signedPart, byte[] signature, X509Certificate2? pinned, string list, string source)
    {
        var signed = new SignedCms(new ContentInfo(signedPart), detached: true);
        try
        {
            signed.Decode(signature);
            if (signed.SignerInfos.Count != 1)
            {
                throw new KeyMessageRefusedException($"{source}: the key message has {signed.SignerInfos.Count} signatures, not the owner's one");
            }

            SignerInfo info = signed.SignerInfos[0];
            if (pinned is null)
            {
                X509Certificate2 carried = info.Certificate
                    ?? throw new KeyMessageRefusedException($"{source}: the signature carries no certificate and no owner certificate is pinned for {list} (give --owner-cert)");
                info.CheckSignature(verifySignatureOnly: true);
                return carried;
            }

            // The certificate the message carries is looked up first; whichever one verified must be the pinned one.
            info.CheckSignature([pinned], verifySignatureOnly: true);
            X509Certificate2 used = info.Certificate ?? pinned;
            if (!used.RawData.AsSpan().SequenceEqual(pinned.RawData))
            {
                throw new KeyMessageRefusedException(
                    $"{source}: signed by {used.Subject} (SHA-256 {CertificateInspector.Sha256Fingerprint(used)}), not by the owner certificate pinned for {list} (SHA-256 {CertificateInspector.Sha256Fingerprint(pinned)})");
            }

            return pinned;
        }
        catch (CryptographicException e)
        {
            string expected = pinned is null ? "the certificate it carries" : $"the owner certificate pinned for {list} (SHA-256 {CertificateInspector.Sha256Fingerprint(pinned)})";
            throw new KeyMessageRefusedException($"{source}: the key message's signature does not verify under {expected}: {e.Message.ReplaceLineEndings(" ").Trim()}");
        }
    }

    /// <summary>A plain ASCII address: nothing the server's export supplies may add a header field or a line.</summary>
    public static bool IsHeaderSafe(string address) => EmailAddress.IsValid(address) && address.All(c => c is >= '!' and <= '~');

    private static void RequireHeaderSafe(string address)
    {
        if (!IsHeaderSafe(address))
        {
            throw new UsageException($"'{address.ReplaceLineEndings(" ")}' is not a plain mail address");
        }
    }
}

/// <summary>A key file whose owner signature verified, with the certificate it verified under.</summary>
public sealed record SignedListKey(ListKeyFile Key, X509Certificate2 Signer);

/// <summary>A key message that must not be imported: unsigned, signed by someone other than the pinned owner, altered,
/// or replaying an older epoch. <c>listkey import</c> exits 3 with this one line.</summary>
public sealed class KeyMessageRefusedException(string message) : Exception(message);
