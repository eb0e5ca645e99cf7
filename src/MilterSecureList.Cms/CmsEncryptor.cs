using System.Formats.Asn1;
using System.Security.Cryptography;
using MilterSecureList.Cms.Asn1;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Rewrap;

namespace MilterSecureList.Cms;

/// <summary>Ordinary S/MIME encryption to a set of recipients (ktri / kari as each <see cref="CmsRecipient"/> says), for
/// the admin tool (e.g. distributing list keys to members) and tests. The milter itself never encrypts content.</summary>
public static class CmsEncryptor
{
    /// <summary>Encrypt <paramref name="content"/> (normally a canonical MIME entity) for <paramref name="recipients"/>.</summary>
    /// <param name="useGcm">false (default): AES-256-CBC EnvelopedData, readable by every client in docs/cms.md §10;
    /// true: AES-256-GCM AuthEnvelopedData (openssl reads it; Thunderbird/Outlook/gpgsm 2.2 do not).</param>
    /// <returns>The DER ContentInfo.</returns>
    public static byte[] Encrypt(ReadOnlySpan<byte> content, IReadOnlyList<CmsRecipient> recipients, bool useGcm = false)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        if (recipients.Count == 0)
        {
            CmsRewrapException.Throw(CmsRewrapFailure.InvalidArgument, "no recipients given");
        }

        byte[] cek = GC.AllocateArray<byte>(32, pinned: true);
        RandomNumberGenerator.Fill(cek);
        try
        {
            var ris = new byte[recipients.Count][];
            for (int i = 0; i < ris.Length; i++)
            {
                ris[i] = RecipientInfoWriter.Write(recipients[i], cek);
            }

            (byte[] eci, byte[]? mac) = ContentCipher.Encrypt(content, cek, useGcm);
            bool allV0 = recipients.All(r => r.KeyTransport != CmsKeyTransport.EcdhStdSha256Aes256Wrap);
            var w = new AsnWriter(AsnEncodingRules.DER, eci.Length + ris.Sum(r => r.Length) + 128);
            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(useGcm ? Oids.AuthEnvelopedData : Oids.EnvelopedData);
                using (w.PushSequence(AsnTags.Constructed0))
                using (w.PushSequence())
                {
                    w.WriteInteger(useGcm ? 0 : EnvelopedDataAsn.ComputeEnvelopedDataVersion(null, false, false, allV0));
                    using (w.PushSetOf())
                    {
                        foreach (byte[] ri in ris)
                        {
                            w.WriteEncodedValue(ri);
                        }
                    }

                    w.WriteEncodedValue(eci);
                    if (mac is not null)
                    {
                        w.WriteOctetString(mac);
                    }
                }
            }

            return w.Encode();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(cek);
        }
    }
}
