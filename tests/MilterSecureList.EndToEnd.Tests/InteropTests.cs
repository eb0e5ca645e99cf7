using System.Text;
using MilterSecureList.EndToEnd.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// Real senders (openssl, gpgsm, NSS) encrypt to the certificate from `securelist list export-cert`,
/// swaks sends to Postfix, the milter expands and re-keys, smtp-sink receives the message addressed to the members
/// only, and each member's own client decrypts the sender's exact MIME entity. A non-member key cannot.
/// </summary>
[Collection(ListWorldCollection.Name)]
[Trait("Category", "EndToEnd")]
public sealed class InteropTests(ListWorld world)
{
    private static readonly string[] CryptoMembers = ["alice", "bob", "carol", "gina", "nina"];

    private static string Addr(string raw) => raw.Replace("TO:", "", StringComparison.OrdinalIgnoreCase).Trim('<', '>');

    /// <summary>Sends POST to the list, then: delivered to the members only, and openssl (alice, bob, carol),
    /// gpgsm (gina) and cmsutil (nina) each get ENTITY back, while mallory (not a member) cannot decrypt.</summary>
    private async Task AssertEveryMemberReadsAsync(string sender, string post, string subject, byte[] entity)
    {
        Swaks s = await world.SendAsync(sender, [ListWorld.Crypto], post);
        Assert.True(s.Accepted, s.ToString());
        await AssertDeliveredToAsync(subject, CryptoMembers, ListWorld.Crypto);
        SinkMessage m = (await world.ReceivedAsync(subject))[0];
        foreach (string name in new[] { "alice", "bob", "carol" })
        {
            Assert.Equal(entity, await world.OpensslDecryptAsync(m, world[name]));
        }

        Assert.Equal(entity, await world.GpgsmDecryptAsync(m));
        Assert.Equal(entity, await world.CmsutilDecryptAsync(m));
        Assert.Null(await world.OpensslDecryptAsync(m, world["mallory"]));
    }

    private async Task AssertDeliveredToAsync(string subject, IEnumerable<string> expectedMembers, string list)
    {
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        List<string> rcpts = [.. got.SelectMany(m => m.Recipients).Select(Addr)];
        // Never the list address (nor any address of the list domain): only the members.
        Assert.DoesNotContain(rcpts, r => r.Equals(list, StringComparison.OrdinalIgnoreCase) || r.EndsWith("@" + ListWorld.Domain, StringComparison.OrdinalIgnoreCase));
        Assert.Equal(expectedMembers.Select(n => world[n].Address).Order(), rcpts.Order());
    }

    [Fact]
    public async Task Openssl_aes256_cbc_signed_post_reaches_every_member_who_decrypts_and_verifies()
    {
        const string subject = "interop openssl aes256";
        // alice signs (multipart/signed), then encrypts to the list certificate, as demo.sh and any S/MIME client do.
        string entity = Path.Combine(world.Dir, "signed-entity.txt");
        await File.WriteAllBytesAsync(entity, Smime.Entity("Signed and encrypted with AES-256-CBC."));
        string signed = Path.Combine(world.Dir, "signed.eml");
        await Tool.OpensslAsync("cms", "-sign", "-md", "sha256", "-signer", world["alice"].CertPath, "-inkey", world["alice"].KeyPath, "-in", entity, "-out", signed);
        byte[] signedBytes = await File.ReadAllBytesAsync(signed);
        string post = await world.OpensslPostAsync(world["alice"].Address, ListWorld.Crypto, subject, signedBytes, [world.ListCert(ListWorld.Crypto)], "-aes256");

        Swaks s = await world.SendAsync(world["alice"].Address, [ListWorld.Crypto], post);
        Assert.True(s.Accepted, s.ToString());
        await AssertDeliveredToAsync(subject, CryptoMembers, ListWorld.Crypto); // alice is a member: her own copy too
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        SinkMessage m = got[0];
        Assert.Contains("List-Id: <crypto.lists.e2e.test>", m.Headers, StringComparison.Ordinal);
        Assert.Contains("X-SecureList: 5 members re-keyed", m.Headers, StringComparison.Ordinal);

        string normalizedSigned = Encoding.ASCII.GetString(signedBytes).ReplaceLineEndings("\n");
        foreach (string name in new[] { "alice", "bob", "carol" })
        {
            byte[]? plain = await world.OpensslDecryptAsync(m, world[name]);
            Assert.True(plain is not null, $"{name} (openssl) cannot decrypt");
            // openssl -sign writes the S/MIME entity with CRLF; -binary keeps the bytes: exact entity.
            Assert.Equal(normalizedSigned, Encoding.ASCII.GetString(plain).ReplaceLineEndings("\n"));
            string decrypted = Path.Combine(world.Dir, $"verify-{name}.eml");
            await File.WriteAllBytesAsync(decrypted, plain);
            string content = Path.Combine(world.Dir, $"verified-{name}.txt");
            await Tool.OpensslAsync("cms", "-verify", "-CAfile", world["alice"].CertPath, "-in", decrypted, "-out", content);
            Assert.Equal(await File.ReadAllBytesAsync(entity), await File.ReadAllBytesAsync(content));
        }

        byte[]? gina = await world.GpgsmDecryptAsync(m);
        Assert.True(gina is not null, "gina (gpgsm) cannot decrypt");
        Assert.Equal(signedBytes, gina);
        byte[]? nina = await world.CmsutilDecryptAsync(m);
        Assert.True(nina is not null, "nina (NSS cmsutil) cannot decrypt");
        Assert.Equal(signedBytes, nina);

        Assert.Null(await world.OpensslDecryptAsync(m, world["mallory"]));
        Assert.Null(await world.OpensslDecryptAsync(m, world["dave"]));
    }

    [Fact]
    public async Task Openssl_aes128_gcm_auth_enveloped_post_is_read_by_openssl_members()
    {
        const string subject = "interop openssl gcm";
        byte[] entity = Smime.Entity("AuthEnvelopedData, AES-128-GCM.");
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Crypto, subject, entity, [world.ListCert(ListWorld.Crypto)], "-aes-128-gcm");
        Assert.Contains("authEnveloped-data", await File.ReadAllTextAsync(post), StringComparison.Ordinal);

        Swaks s = await world.SendAsync(world["dave"].Address, [ListWorld.Crypto], post);
        Assert.True(s.Accepted, s.ToString());
        await AssertDeliveredToAsync(subject, CryptoMembers, ListWorld.Crypto); // dave is not a member: no copy
        SinkMessage m = (await world.ReceivedAsync(subject))[0];
        Assert.Contains("authEnveloped-data", m.Headers, StringComparison.Ordinal);
        // Only openssl reads AuthEnvelopedData (docs/cms.md §10): gpgsm and NSS members cannot, by their own limits.
        foreach (string name in new[] { "alice", "bob", "carol" })
        {
            Assert.Equal(entity, await world.OpensslDecryptAsync(m, world[name]));
        }

        Assert.Null(await world.OpensslDecryptAsync(m, world["mallory"]));
    }

    [Fact]
    public async Task Openssl_oaep_post_to_the_list_is_rekeyed()
    {
        const string subject = "interop openssl oaep";
        byte[] entity = Smime.Entity("Session key wrapped for the list with RSAES-OAEP.");
        string post = await world.OpensslPostAsync(world["carol"].Address, ListWorld.Crypto, subject, entity, [world.ListCert(ListWorld.Crypto)],
            "-aes256", "-keyopt", "rsa_padding_mode:oaep");
        Swaks s = await world.SendAsync(world["carol"].Address, [ListWorld.Crypto], post);
        Assert.True(s.Accepted, s.ToString());
        await AssertDeliveredToAsync(subject, CryptoMembers, ListWorld.Crypto);
        SinkMessage m = (await world.ReceivedAsync(subject))[0];
        Assert.Equal(entity, await world.OpensslDecryptAsync(m, world["alice"]));
        Assert.Equal(entity, await world.OpensslDecryptAsync(m, world["bob"]));
        Assert.Equal(entity, await world.GpgsmDecryptAsync(m));
        Assert.Equal(entity, await world.CmsutilDecryptAsync(m));
        Assert.Null(await world.OpensslDecryptAsync(m, world["mallory"]));
    }

    [Fact]
    public async Task Gpgsm_sender_ber_aes128_cbc_is_read_by_every_member()
    {
        const string subject = "interop gpgsm";
        byte[] entity = Smime.Entity("Sent with gpgsm.");
        string post = await world.GpgsmPostAsync(world["gina"].Address, ListWorld.Crypto, subject, entity);
        await AssertEveryMemberReadsAsync(world["gina"].Address, post, subject, entity);
    }

    [Fact]
    public async Task Nss_cmsutil_sender_is_read_by_every_member()
    {
        const string subject = "interop cmsutil";
        byte[] entity = Smime.Entity("Sent with NSS cmsutil.");
        string post = await world.CmsutilPostAsync(world["nina"].Address, ListWorld.Crypto, subject, entity);
        await AssertEveryMemberReadsAsync(world["nina"].Address, post, subject, entity);
    }
}
