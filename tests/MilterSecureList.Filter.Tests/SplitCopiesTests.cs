using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Directory;
using MimeKit;
using static MilterSecureList.Filter.Tests.FilterTestKit;

namespace MilterSecureList.Filter.Tests;

/// <summary>
/// [Policy] MembersPerCopy: an encrypted post to more members than that is split, the milter's own message keeping
/// the first group and every further group going out as a copy of its own, re-keyed for that group alone.
/// </summary>
public sealed class SplitCopiesTests
{
    private const string List = "big@lists.example.org";
    private static readonly string[] Members = [.. Enumerable.Range(1, 7).Select(i => $"m{i}@example.org")];

    /// <summary>Keeps every copy it is handed; throws instead of taking copy number <see cref="FailAt"/> (1-based).</summary>
    private sealed class RecordingCopySubmitter : ICopySubmitter
    {
        public int FailAt { get; init; } = int.MaxValue;

        public List<(string Server, string Sender, IReadOnlyList<string> Recipients, byte[] Message)> Copies { get; } = [];

        public async Task<int> SubmitAsync(string server, string sender, IAsyncEnumerable<ListCopy> copies, CancellationToken cancellationToken)
        {
            await foreach (ListCopy copy in copies.WithCancellation(cancellationToken))
            {
                if (Copies.Count + 1 == FailAt)
                {
                    throw new IOException("451 4.3.0 queue file write error");
                }

                using var bytes = new MemoryStream();
                await copy.Message.CopyToAsync(bytes, cancellationToken);
                await copy.Message.DisposeAsync();
                Copies.Add((server, sender, copy.Recipients, bytes.ToArray()));
            }

            return Copies.Count;
        }
    }

    private static async Task<FilterDecision> PostAsync(ICopySubmitter? copies, int perCopy, IReadOnlyDictionary<string, string>? listOptions = null, bool encrypted = true)
    {
        FakeDirectory dir = NewDirectory(List, options: listOptions, members: [.. Members.Select(m => Member(m))]);
        var policy = new PolicyOptions { MembersPerCopy = perCopy, CopyServer = "127.0.0.1:2525" };
        var message = new ListMessage("<dave@example.com>", [$"<{List}>"], encrypted ? SmimeHeaders : PlainHeaders,
            encrypted ? Base64Body(Encrypt(List)) : new MemoryStream("hello\r\n"u8.ToArray()), "Q1");
        return await new ListMessageProcessor(dir, policy, new RecordingOwnerNotifier(), NullLogger.Instance, copies: copies).ProcessAsync(message);
    }

    private static EnvelopedCms Cms(byte[] copy)
    {
        using MimeMessage m = MimeMessage.Load(new MemoryStream(copy));
        var part = Assert.IsAssignableFrom<MimePart>(m.Body);
        using var der = new MemoryStream();
        part.Content!.DecodeTo(der);
        var cms = new EnvelopedCms();
        cms.Decode(der.ToArray());
        return cms;
    }

    [Fact]
    public async Task EachGroupGetsACopyReKeyedForItsMembersAloneAndTheMilterKeepsTheFirstGroup()
    {
        var copies = new RecordingCopySubmitter();
        using FilterDecision d = await PostAsync(copies, perCopy: 3);

        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(Members[..3], d.AddRecipients);
        Assert.Equal([$"<{List}>"], d.DeleteRecipients);
        Assert.Equal(3, d.MembersRekeyed);
        Assert.Equal(2, d.CopiesSubmitted);
        Assert.Equal(4, d.MembersInCopies);
        Assert.Contains(d.AddHeaders, h => h.Name == "X-SecureList" && h.Value.EndsWith("copy 1 of 3", StringComparison.Ordinal));
        Assert.Equal(Entity, DecryptAs(d.NewBody!, Members[0]));
        Assert.ThrowsAny<CryptographicException>(() => DecryptAs(d.NewBody!, Members[3]));

        Assert.Equal(2, copies.Copies.Count);
        Assert.All(copies.Copies, c => Assert.Equal(("127.0.0.1:2525", "dave@example.com"), (c.Server, c.Sender)));
        Assert.Equal(Members[3..6], copies.Copies[0].Recipients);
        Assert.Equal(Members[6..], copies.Copies[1].Recipients);
        for (int i = 0; i < 2; i++)
        {
            IReadOnlyList<string> group = copies.Copies[i].Recipients;
            EnvelopedCms cms = Cms(copies.Copies[i].Message);
            Assert.Equal(group.Count, cms.RecipientInfos.Count);
            cms.Decrypt(new System.Security.Cryptography.X509Certificates.X509Certificate2Collection(Certificate(group[^1])));
            Assert.Equal(Entity, cms.ContentInfo.Content);
            Assert.ThrowsAny<CryptographicException>(() => Cms(copies.Copies[i].Message).Decrypt(
                new System.Security.Cryptography.X509Certificates.X509Certificate2Collection(Certificate(Members[0]))));

            // The post's own header fields (LF folding as the MTA sent it, now CRLF), the list headers and the copy's stamp.
            string head = Encoding.UTF8.GetString(copies.Copies[i].Message).Split("\r\n\r\n")[0] + "\r\n";
            Assert.Contains("Subject: meeting\r\n", head, StringComparison.Ordinal);
            Assert.Contains("Content-Type: application/pkcs7-mime; smime-type=enveloped-data;\r\n\tname=smime.p7m\r\n", head, StringComparison.Ordinal);
            Assert.Contains($"List-Id: <big.lists.example.org>\r\n", head, StringComparison.Ordinal);
            Assert.Contains($"X-SecureList: {group.Count} members re-keyed for {List} (rekey mode), copy {i + 2} of 3\r\n", head, StringComparison.Ordinal);
            Assert.DoesNotContain("\n", head.Replace("\r\n", "", StringComparison.Ordinal), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ACopyThatCannotBeQueuedTempfailsThePostSoNoMemberIsLeftOut()
    {
        var copies = new RecordingCopySubmitter { FailAt = 2 };
        using FilterDecision d = await PostAsync(copies, perCopy: 3);

        Assert.Equal(FilterVerdictKind.Tempfail, d.Kind);
        Assert.Equal(451, d.Reply!.Code);
        Assert.Equal("4.3.0", d.Reply.EnhancedCode);
        Assert.Empty(d.AddRecipients);
        Assert.Null(d.NewBody);
    }

    [Theory]
    [InlineData(true, 0)]     // MembersPerCopy = 0: never split
    [InlineData(true, 7)]     // no more members than MembersPerCopy
    [InlineData(false, 3)]    // no submitter (securelist check, the Exim filter)
    public async Task APostIsNotSplitWithoutCauseOrWithoutASubmitter(bool withSubmitter, int perCopy)
    {
        var copies = new RecordingCopySubmitter();
        using FilterDecision d = await PostAsync(withSubmitter ? copies : null, perCopy);

        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(Members, d.AddRecipients);
        Assert.Equal(7, d.MembersRekeyed);
        Assert.Equal(0, d.CopiesSubmitted);
        Assert.Empty(copies.Copies);
    }

    [Fact]
    public async Task PlaintextPassedToAListIsNeverSplitBecauseOneBodyServesEveryMember()
    {
        var copies = new RecordingCopySubmitter();
        var options = new Dictionary<string, string> { [ListOptionKeys.Plaintext] = "pass" };
        using FilterDecision d = await PostAsync(copies, perCopy: 3, options, encrypted: false);

        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(Members, d.AddRecipients);
        Assert.Empty(copies.Copies);
    }

    [Theory]
    [InlineData("MembersPerCopy", "-1", "[Policy] MembersPerCopy: '-1' is not a whole number (0 = never split)")]
    [InlineData("MembersPerCopy", "100001", "[Policy] MembersPerCopy: must be between 0 (never split) and 100000")]
    [InlineData("CopyServer", "localhost", "[Policy] CopyServer: expected HOST:PORT, e.g. 127.0.0.1:25 (got 'localhost')")]
    public void BadSplitSettingsAreRefusedNamingTheKey(string key, string value, string problem)
    {
        var problems = new List<string>();
        PolicyOptions.Bind(k => k == key ? value : null, problems);
        Assert.Equal([problem], problems);
    }
}
