using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MilterSecureList.Directory;
using MilterSecureList.Mime;

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
            string headers = $"From: {from}\r\nTo: {to}\r\n"
                + $"Subject: List key for {listKey.List}, epoch {epoch}\r\n"
                + $"Date: {now.ToUniversalTime().ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture)}\r\n"
                + $"X-SecureList-ListKey: {listKey.List}; epoch={epoch}\r\n";
            return SmimeEntities.WriteEncrypted(headers, cms, authEnveloped: false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(signedEntity);
        }
    }

    /// <summary>The multipart/signed entity: the key file as a text/plain attachment and the owner's detached signature
    /// over that part's canonical (CRLF) bytes (RFC 8551 §3.1.1).</summary>
    public static byte[] Sign(ListKeyFile listKey, X509Certificate2 ownerSigner)
    {
        byte[] part = KeyPart(listKey);
        try
        {
            var signed = new SignedCms(new ContentInfo(part), detached: true);
            var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, ownerSigner)
            {
                DigestAlgorithm = new Oid("2.16.840.1.101.3.4.2.1"), // SHA-256
                IncludeOption = X509IncludeOption.EndCertOnly,
            };
            signed.ComputeSignature(signer, silent: true);
            string boundary = "=-securelist-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            string head = "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n"
                + $"\tboundary=\"{boundary}\"\r\n\r\n"
                + "This is an S/MIME signed message.\r\n\r\n"
                + $"--{boundary}\r\n";
            string tail = $"\r\n--{boundary}\r\n"
                + "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
                + "Content-Transfer-Encoding: base64\r\n"
                + "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
                + Convert.ToBase64String(signed.Encode(), Base64FormattingOptions.InsertLineBreaks)
                + $"\r\n--{boundary}--\r\n";
            return [.. Encoding.ASCII.GetBytes(head), .. part, .. Encoding.ASCII.GetBytes(tail)];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(part);
        }
    }

    private static byte[] KeyPart(ListKeyFile listKey)
    {
        byte[] text = Encoding.ASCII.GetBytes(listKey.Format().ReplaceLineEndings("\r\n"));
        try
        {
            return [.. Encoding.ASCII.GetBytes(
                "Content-Type: text/plain; charset=us-ascii\r\n"
                + $"Content-Disposition: attachment; filename=\"{ListKeyDirectory.FileName(listKey.List, listKey.Epoch)}\"\r\n\r\n"), .. text];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(text);
        }
    }

    /// <summary>Reads the decrypted entity of a key message and checks the owner's signature. With
    /// <paramref name="pinnedOwner"/> the signature must verify under exactly that certificate; without one (the first
    /// key of a list) it must verify under the certificate the message carries, which the caller then pins.</summary>
    /// <exception cref="KeyMessageRefusedException">Not signed, signed by another certificate, or altered.</exception>
    public static SignedListKey Open(byte[] entity, Func<string, X509Certificate2?> pinnedOwnerOf, string source)
    {
        (List<string> fields, byte[] body) = SmimeEntities.SplitCanonical(entity);
        MimeKit.ContentType? type = ContentTypeOf(fields);
        if (type is null || !type.IsMimeType("multipart", "signed") || type.Parameters["boundary"] is not { Length: > 0 } boundary
            || type.Parameters["protocol"]?.ToLowerInvariant() is not ("application/pkcs7-signature" or "application/x-pkcs7-signature"))
        {
            CryptographicOperations.ZeroMemory(body);
            throw new KeyMessageRefusedException($"{source}: the key message is not signed (S/MIME multipart/signed): not from the list owner");
        }

        (byte[] signedPart, byte[] signature) = SmimeEntities.SplitMultipartSigned(body, boundary);
        CryptographicOperations.ZeroMemory(body);
        try
        {
            (_, byte[] keyText) = SmimeEntities.SplitCanonical(signedPart);
            ListKeyFile key;
            try
            {
                key = ListKeyFile.Parse(Encoding.ASCII.GetString(keyText), source);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(keyText);
            }

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
            CryptographicOperations.ZeroMemory(signedPart);
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

    private static MimeKit.ContentType? ContentTypeOf(List<string> fields)
    {
        string? value = fields
            .Where(f => f.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase))
            .Select(f => f["Content-Type:".Length..].Replace("\r\n", string.Empty, StringComparison.Ordinal))
            .FirstOrDefault();
        return value is not null && MimeKit.ContentType.TryParse(value, out MimeKit.ContentType? type) ? type : null;
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
