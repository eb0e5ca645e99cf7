using System.Security.Cryptography;
using System.Text;

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
        Assert.Equal(wrapped, Convert.ToHexString(AesKeyWrap.Wrap(Convert.FromHexString(kek), Convert.FromHexString(key))));
        byte[] back = new byte[key.Length / 2];
        Assert.True(AesKeyWrap.TryUnwrap(Convert.FromHexString(kek), Convert.FromHexString(wrapped), back));
        Assert.Equal(key, Convert.ToHexString(back));
    }

    [Fact]
    public void AesKeyWrap_RoundTrip_AndIntegrity()
    {
        for (int len = 16; len <= 64; len += 8)
        {
            byte[] kek = RandomNumberGenerator.GetBytes(32);
            byte[] key = RandomNumberGenerator.GetBytes(len);
            byte[] w = AesKeyWrap.Wrap(kek, key);
            byte[] back = new byte[len];
            Assert.True(AesKeyWrap.TryUnwrap(kek, w, back));
            Assert.Equal(key, back);
            w[^1] ^= 1;
            Assert.False(AesKeyWrap.TryUnwrap(kek, w, back));
            Assert.All(back, b => Assert.Equal(0, b));
        }
    }

    // FIPS 180-4 example "abc" and the two-block message (NIST CSRC SHA-224 examples).
    [Theory]
    [InlineData("abc", "23097D223405D8228642A477BDA255B32AADBCE4BDA0B3F7E36C9DA7")]
    [InlineData("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "75388B16512776CC5DBA5DA1FD890150B0C6455CB4F58B1952522525")]
    [InlineData("", "D14A028C2A3A2BC9476102BB288234C415A2B01F828EA62AC5B3E42F")]
    public void Sha224_FixedValue(string input, string digest) =>
        Assert.Equal(digest, Convert.ToHexString(Sha224.HashData(Encoding.ASCII.GetBytes(input))));

    [Fact]
    public void ProjectArcIsTheUuidAsAnInteger()
    {
        var guid = Guid.Parse("eab14c93-b578-4932-9c29-c0272fae6637");
        var n = new System.Numerics.BigInteger(guid.ToByteArray(bigEndian: true), isUnsigned: true, isBigEndian: true);
        Assert.Equal(Oids.ProjectArc, "2.25." + n);
    }
}
