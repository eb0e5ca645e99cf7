using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Cms;
using MilterSecureList.Cms.KeyRelease;
using MilterSecureList.Directory;

namespace MilterSecureList.KeyRelease.Tests;

/// <summary>A double-wrap release list: the key server holds and releases only the inner list-key blob, so neither it nor
/// the milter ever has a content key (docs/key-release.md §9; docs/double-wrap.md §3).</summary>
public sealed class DoubleWrapReleaseTests : IAsyncLifetime
{
    private const string Secret = "secret@lists.test";
    private readonly ReleaseWorld _world = new();
    private TestMember _alice = null!;

    public async Task InitializeAsync()
    {
        _alice = _world.AddMember("alice@example.test", addToList: false);
        _world.Admin.CreateList(Secret, ListMode.Double, "owner@lists.test", ListKeyType.Rsa2048);
        _world.Admin.SetList(Secret, null, null, null, ["release=on"]);
        _world.Admin.AddMember(Secret, _alice.Address, [_alice.CertificateFile], useOaep: false, allowMismatch: false);
        await _world.StartAsync();
    }

    public async Task DisposeAsync() => await _world.DisposeAsync();

    [Fact]
    public async Task TheMemberOpensThePostWithTheListKeyAndTheKeyServerHoldsOnlyTheInnerBlob()
    {
        byte[] listKey = RandomNumberGenerator.GetBytes(DoubleWrap.ListKeyLength);
        byte[] entity = Encoding.ASCII.GetBytes("Content-Type: text/plain\r\n\r\nonly members with the list key\r\n");
        byte[] post = DoubleWrap.Encrypt(entity, Secret, 7, listKey, _world.Admin.GetCurrentCertificate(Secret));

        // The milter's step with the server's (outer-layer) keys: it removes its own layer and deposits the blob.
        IReadOnlyList<ListKey> serverKeys = [.. new ListDirectory(_world.Store, _world.KeyStore, TimeProvider.System).GetListKeys(Secret)
            .Select(p => new ListKey(p.Certificate, p.PrivateKey, ownsKey: false))];
        var policy = new ReleasePolicy(Secret, ReleaseMode.Double, "bob@example.test", DateTimeOffset.UtcNow.AddDays(1));
        KeyReleaseSeal seal = KeyReleaseSealer.Seal(post, serverKeys, _world.ReleaseRecipient, _world.Url.ToString(), policy, KeyReleaseEntry.NewMessageId());
        Assert.Equal(Aes.GetKeyWrapPaddedLength(32), seal.KeyLength); // an RFC 5649 blob, not a 32-byte content key
        Assert.NotNull(seal.ListKeyId);
        using (KeyReleaseClient milter = _world.MilterHttp())
        {
            await milter.DepositAsync(_world.Url, KeyReleaseDeposit.From(seal), CancellationToken.None);
        }

        using KeyReleaseClient reader = _world.ReaderHttp();
        ReleaseHttpResponse? reply = await reader.ReleaseAsync(_world.Url,
            ReleaseWorld.SignedRequest(seal.Entry, _alice.Address, _alice.Certificate, _alice.Key), CancellationToken.None);
        Assert.NotNull(reply);
        byte[] readable = KeyReleaseReader.Insert(seal.ContentInfo, reply.RecipientInfo);

        Assert.Equal(entity, DoubleWrap.Decrypt(readable, _alice.Certificate, _alice.Key, id => id == (Secret, 7L) ? listKey : null));
        // What the key server released opens nothing without the list key, which it never had.
        CmsRewrapException e = Assert.Throws<CmsRewrapException>(() => DoubleWrap.Decrypt(readable, _alice.Certificate, _alice.Key, _ => null));
        Assert.Equal(CmsRewrapFailure.DecryptionFailed, e.Reason);
        Assert.Null(await _world.OpensslDecryptAsync(readable, _alice));
    }

    [Fact]
    public async Task ADepositWhoseModeDiffersFromTheListsIsRefused()
    {
        byte[] post = await _world.OpensslPostAsync("rekey post\r\n");
        var policy = new ReleasePolicy(Secret, ReleaseMode.Rekey, "bob@example.test", DateTimeOffset.UtcNow.AddDays(1));
        KeyReleaseSeal seal = KeyReleaseSealer.Seal(post, _world.ListKeys(), _world.ReleaseRecipient, _world.Url.ToString(), policy, KeyReleaseEntry.NewMessageId());
        using KeyReleaseClient milter = _world.MilterHttp();
        await Assert.ThrowsAsync<KeyServerUnavailableException>(() => milter.DepositAsync(_world.Url, KeyReleaseDeposit.From(seal), CancellationToken.None));
    }
}
