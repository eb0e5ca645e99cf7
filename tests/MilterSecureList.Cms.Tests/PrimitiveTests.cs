using System.Security.Cryptography;
using System.Text;
using MilterSecureList.Cms.Primitives;
using MilterSecureList.Cms.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.Cms.Tests;

public class PrimitiveTests
{
    // RFC 3394 §4.1 (128-bit KEK, 128-bit key) and §4.6 (256-bit KEK, 256-bit key).
    [Theory]
    [InlineData("000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")]
    [InlineData("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")]
    public void AesKeyWrap_FixedValue(string kek, string key, string wrapped)
    {
        Assert.Equal(wrapped, Convert.ToHexString(KeyWrap.WrapAes(Convert.FromHexString(kek), Convert.FromHexString(key))));
        byte[] back = new byte[key.Length / 2];
        Assert.True(KeyWrap.TryUnwrap(Oids.Aes256Wrap, Convert.FromHexString(kek), Convert.FromHexString(wrapped), back));
        Assert.Equal(key, Convert.ToHexString(back));
    }

    [Fact]
    public void AesKeyWrap_RoundTrip_AndIntegrity()
    {
        for (int len = 16; len <= 64; len += 8)
        {
            byte[] kek = RandomNumberGenerator.GetBytes(32);
            byte[] key = RandomNumberGenerator.GetBytes(len);
            byte[] w = KeyWrap.WrapAes(kek, key);
            byte[] back = new byte[len];
            Assert.True(KeyWrap.TryUnwrap(Oids.Aes256Wrap, kek, w, back));
            Assert.Equal(key, back);
            w[^1] ^= 1;
            Assert.False(KeyWrap.TryUnwrap(Oids.Aes256Wrap, kek, w, back));
            Assert.All(back, b => Assert.Equal(0, b));
        }
    }

    // FIPS 180-4 example "abc" and the two-block message (NIST CSRC SHA-224 examples).
    [Theory]
    [InlineData("abc", "23097D223405D8228642A477BDA255B32AADBCE4BDA0B3F7E36C9DA7")]
    [InlineData("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "75388B16512776CC5DBA5DA1FD890150B0C6455CB4F58B1952522525")]
    [InlineData("", "D14A028C2A3A2BC9476102BB288234C415A2B01F828EA62AC5B3E42F")]
    public void Sha224_FixedValue(string input, string digest)
    {
        Org.BouncyCastle.Crypto.IDigest sha224 = Digests.Create(Oids.Sha224);
        byte[] data = Encoding.ASCII.GetBytes(input);
        sha224.BlockUpdate(data, 0, data.Length);
        byte[] result = new byte[sha224.GetDigestSize()];
        sha224.DoFinal(result, 0);
        Assert.Equal(digest, Convert.ToHexString(result));
    }

    // RFC 3217 §3.2/§3.3 round trip and integrity: a 24-byte 3DES content key wraps to 40 bytes (CEK || ICV, IV
    // prepended, reversed, encrypted twice); any change to the wrapped form fails the SHA-1 ICV check.
    [Fact]
    public void TripleDesKeyWrap_RoundTrip_AndIntegrity()
    {
        byte[] kek = RandomNumberGenerator.GetBytes(24);
        byte[] cek = RandomNumberGenerator.GetBytes(24);
        var engine = new Org.BouncyCastle.Crypto.Engines.DesEdeWrapEngine();
        engine.Init(true, new Org.BouncyCastle.Crypto.Parameters.ParametersWithRandom(
            new Org.BouncyCastle.Crypto.Parameters.KeyParameter(kek), new Org.BouncyCastle.Security.SecureRandom()));
        byte[] wrapped = engine.Wrap(cek, 0, cek.Length);
        Assert.Equal(40, wrapped.Length);
        byte[] back = new byte[24];
        Assert.True(KeyWrap.TryUnwrap(Oids.Cms3DesWrap, kek, wrapped, back));
        Assert.Equal(cek, back);
        wrapped[17] ^= 0x01;
        Assert.False(KeyWrap.TryUnwrap(Oids.Cms3DesWrap, kek, wrapped, back));
        Assert.All(back, b => Assert.Equal(0, b));
        Assert.False(KeyWrap.TryUnwrap(Oids.Cms3DesWrap, kek, new byte[40], new byte[16])); // 3DES wrap carries 24-byte keys only
    }

    // ANSI X9.63 KDF known answers from the NIST CAVS component test (ansx963_2001.rsp), no SharedInfo.
    [Theory]
    [InlineData(Oids.Sha1, "1c7d7b5f0597b03d06a018466ed1a93e30ed4b04dc64ccdd", "bf71dffd8f4d99223936beb46fee8ccc")]
    [InlineData(Oids.Sha256, "96c05619d56c328ab95fe84b18264b08725b85e33fd34f08", "443024c3dae66b95e6f5670601558f71")]
    public void X963Kdf_FixedValue(string hash, string z, string expected)
    {
        byte[] key = new byte[expected.Length / 2];
        X963Kdf.DeriveKey(hash, Convert.FromHexString(z), [], key);
        Assert.Equal(expected, Convert.ToHexString(key), ignoreCase: true);
    }

    // Every KDF hash with a SharedInfo and multi-block output, against OpenSSL's X963KDF (an independent implementation).
    [Theory]
    [InlineData(Oids.Sha1, "SHA1")]
    [InlineData(Oids.Sha224, "SHA224")]
    [InlineData(Oids.Sha256, "SHA256")]
    [InlineData(Oids.Sha384, "SHA384")]
    [InlineData(Oids.Sha512, "SHA512")]
    public void X963Kdf_MatchesOpenssl(string hash, string opensslName)
    {
        byte[] z = RandomNumberGenerator.GetBytes(32);
        byte[] sharedInfo = RandomNumberGenerator.GetBytes(27);
        byte[] key = new byte[72];
        X963Kdf.DeriveKey(hash, z, sharedInfo, key);
        ToolResult r = Tool.MustRun("openssl", "kdf", "-keylen", "72", "-kdfopt", "digest:" + opensslName,
            "-kdfopt", "hexsecret:" + Convert.ToHexString(z), "-kdfopt", "hexinfo:" + Convert.ToHexString(sharedInfo), "X963KDF");
        Assert.Equal(r.StdOut.Trim().Replace(":", "", StringComparison.Ordinal), Convert.ToHexString(key));
    }

    [Fact]
    public void ProjectArcIsTheUuidAsAnInteger()
    {
        var guid = Guid.Parse("eab14c93-b578-4932-9c29-c0272fae6637");
        var n = new System.Numerics.BigInteger(guid.ToByteArray(bigEndian: true), isUnsigned: true, isBigEndian: true);
        Assert.Equal(Oids.ProjectArc, "2.25." + n);
    }
}
