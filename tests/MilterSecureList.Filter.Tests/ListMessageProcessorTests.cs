using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging.Abstractions;
using MilterSecureList.Directory;
using static MilterSecureList.Filter.Tests.FilterTestKit;

namespace MilterSecureList.Filter.Tests;

public sealed class ListMessageProcessorTests
{
    private const string List = "crypto@lists.example.org";

    private static ListMessageProcessor Processor(FakeDirectory directory, RecordingOwnerNotifier? notices = null, PolicyOptions? policy = null) =>
        new(directory, policy ?? new PolicyOptions(), notices ?? new RecordingOwnerNotifier(), NullLogger.Instance);

    private static FakeDirectory ThreeMembers(PostingPolicy posting = PostingPolicy.Open, IReadOnlyDictionary<string, string>? options = null) =>
        NewDirectory(List, ListMode.Rekey, posting, options, Member("alice@example.org"), Member("bob@example.org"), Member("carol@example.net"));

    private static ListMessage Post(string sender, string[] rcpts, byte[]? der = null, IReadOnlyList<HeaderField>? headers = null) =>
        new(sender, rcpts, headers ?? SmimeHeaders, der is null ? new MemoryStream("hello\r\n"u8.ToArray()) : Base64Body(der), "Q1");

    [Fact]
    public async Task MailWithoutAListRecipientPassesUntouched()
    {
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(Post("<x@y>", ["<someone@example.org>"], headers: PlainHeaders));
        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.False(d.HasModifications);
    }

    [Fact]
    public async Task AnEncryptedPostIsExpandedAndEveryMemberCanDecryptTheSenderEntity()
    {
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(Post("<dave@example.com>", ["<Crypto+News@Lists.Example.Org>", "<other@example.com>"], Encrypt(List)));

        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(["<Crypto+News@Lists.Example.Org>"], d.DeleteRecipients); // exactly as RCPT carried it
        Assert.Equal(["alice@example.org", "bob@example.org", "carol@example.net"], d.AddRecipients);
        Assert.Equal(3, d.MembersRekeyed);
        Assert.Contains(d.AddHeaders, h => h.Name == "List-Id" && h.Value == "<crypto.lists.example.org>");
        Assert.Contains(d.AddHeaders, h => h.Name == "List-Post" && h.Value == $"<mailto:{List}>");
        Assert.Contains(d.AddHeaders, h => h.Name == "X-SecureList" && h.Value.StartsWith("3 members re-keyed", StringComparison.Ordinal));
        foreach (string member in new[] { "alice@example.org", "bob@example.org", "carol@example.net" })
        {
            Assert.Equal(Entity, DecryptAs(d.NewBody!, member));
        }

        // The list's own RecipientInfo is gone: the list key no longer opens the message.
        Assert.ThrowsAny<CryptographicException>(() => DecryptAs(d.NewBody!, List));
    }

    [Fact]
    public async Task RecipientInfosOfOtherDirectRecipientsAreKept()
    {
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(Post("<dave@example.com>", [$"<{List}>", "<zed@example.com>"], Encrypt(List, "zed@example.com")));
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "zed@example.com"));
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "bob@example.org"));
    }

    [Fact]
    public async Task PlaintextIsRejectedWithWhereToGetTheCertificate()
    {
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], headers: PlainHeaders));
        Assert.Equal(FilterVerdictKind.Reject, d.Kind);
        Assert.Equal(550, d.Reply!.Code);
        Assert.Equal("5.7.1", d.Reply.EnhancedCode);
        Assert.Contains("from the list owner <owner@example.org>", d.Reply.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PlaintextPassOptionExpandsWithoutTouchingTheBody()
    {
        var options = new Dictionary<string, string> { [ListOptionKeys.Plaintext] = "pass" };
        using FilterDecision d = await Processor(ThreeMembers(options: options)).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], headers: PlainHeaders));
        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Null(d.NewBody);
        Assert.Equal(3, d.AddRecipients.Count);
        Assert.Equal(0, d.MembersRekeyed);
    }

    [Fact]
    public async Task APostNotEncryptedToTheListKeyIsRejectedWithTheCertificateFingerprint()
    {
        FakeDirectory dir = ThreeMembers();
        using FilterDecision d = await Processor(dir).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt("someone-else@example.com")));
        Assert.Equal(FilterVerdictKind.Reject, d.Kind);
        string fingerprint = Convert.ToHexString(dir.Keys[List][0].Certificate.GetCertHash(HashAlgorithmName.SHA256));
        Assert.Contains(fingerprint, d.Reply!.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMemberWithoutAUsableCertificateIsSkippedAndTheOwnerNotified()
    {
        FakeDirectory dir = NewDirectory(List, members: [Member("alice@example.org"), Member("old@example.org", CertificateStatus.Expired)]);
        var notices = new RecordingOwnerNotifier();
        using FilterDecision d = await Processor(dir, notices).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal(["alice@example.org"], d.AddRecipients);
        Assert.Equal("old@example.org", Assert.Single(d.SkippedMembers).Address);
        Assert.Equal((List, "old@example.org"), (notices.Notices[0].List, notices.Notices[0].Member));
    }

    [Fact]
    public async Task MissingCertificateTempfailPolicyDefersTheMessage()
    {
        FakeDirectory dir = NewDirectory(List, members: [Member("alice@example.org"), Member("old@example.org", CertificateStatus.Missing)]);
        using FilterDecision d = await Processor(dir, policy: new PolicyOptions { MissingCertificate = MissingCertificateAction.Tempfail })
            .ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal(FilterVerdictKind.Tempfail, d.Kind);
        Assert.Equal("451 4.7.0", $"{d.Reply!.Code} {d.Reply.EnhancedCode}");
        Assert.Contains("old@example.org", d.Reply.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void NonMembersOfAMembersOnlyListAreRefusedAtRcpt()
    {
        ListMessageProcessor p = Processor(ThreeMembers(PostingPolicy.MembersOnly));
        RecipientCheck outsider = p.CheckRecipient("<dave@example.com>", $"<{List}>");
        Assert.True(outsider.IsList);
        Assert.Equal("550 5.7.1", $"{outsider.Refusal!.Code} {outsider.Refusal.EnhancedCode}");
        Assert.Null(p.CheckRecipient("<Alice@Example.org>", $"<{List}>").Refusal);
        Assert.False(p.CheckRecipient("<dave@example.com>", "<bob@example.org>").IsList);
    }

    [Fact]
    public async Task NonMembersAreRefusedAtEndOfMessageWhenRcptCheckIsOff()
    {
        var policy = new PolicyOptions { RejectNonMemberAtRcpt = false };
        ListMessageProcessor p = Processor(ThreeMembers(PostingPolicy.MembersOnly), policy: policy);
        Assert.Null(p.CheckRecipient("<dave@example.com>", $"<{List}>").Refusal);
        using FilterDecision d = await p.ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal(FilterVerdictKind.Reject, d.Kind);
    }

    [Fact]
    public async Task TheSenderGetsACopyUnlessTheListOrTheMemberOptsOut()
    {
        using FilterDecision withCopy = await Processor(ThreeMembers()).ProcessAsync(Post("<bob@example.org>", [$"<{List}>"], Encrypt(List)));
        Assert.Contains("bob@example.org", withCopy.AddRecipients);

        var noCopy = new Dictionary<string, string> { [ListOptionKeys.SelfCopy] = "no" };
        using FilterDecision listOptOut = await Processor(ThreeMembers(options: noCopy)).ProcessAsync(Post("<bob@example.org>", [$"<{List}>"], Encrypt(List)));
        Assert.DoesNotContain("bob@example.org", listOptOut.AddRecipients);

        FakeDirectory dir = NewDirectory(List, members: [Member("alice@example.org"), Member("bob@example.org", selfCopy: false)]);
        using FilterDecision memberOptOut = await Processor(dir).ProcessAsync(Post("<bob@example.org>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal(["alice@example.org"], memberOptOut.AddRecipients);
    }

    [Fact]
    public async Task TwoListsInOneMessageGetTheUnionOfTheirMembersOnce()
    {
        FakeDirectory dir = ThreeMembers();
        Add(dir, "board@lists.example.org", members: [Member("bob@example.org"), Member("erin@example.org")]);
        using FilterDecision d = await Processor(dir).ProcessAsync(Post("<dave@example.com>", [$"<{List}>", "<board@lists.example.org>"], Encrypt(List, "board@lists.example.org")));
        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(["alice@example.org", "bob@example.org", "carol@example.net", "erin@example.org"], d.AddRecipients);
        Assert.Equal(2, d.DeleteRecipients.Count);
        Assert.DoesNotContain(d.AddHeaders, h => h.Name == "List-Id"); // RFC 2919: one List-Id per message
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "erin@example.org"));
    }

    [Fact]
    public async Task EveryListOfTheMessageMustHaveItsOwnRecipientInfo()
    {
        FakeDirectory dir = ThreeMembers();
        Add(dir, "board@lists.example.org", members: [Member("erin@example.org")]);
        using FilterDecision d = await Processor(dir).ProcessAsync(Post("<dave@example.com>", [$"<{List}>", "<board@lists.example.org>"], Encrypt(List)));
        Assert.Equal(FilterVerdictKind.Reject, d.Kind);
        Assert.Contains("board@lists.example.org", d.Reply!.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RekeyAndDoubleListsCannotShareAMessage()
    {
        FakeDirectory dir = ThreeMembers();
        Add(dir, "secret@lists.example.org", ListMode.Double, members: [Member("erin@example.org")]);
        using FilterDecision d = await Processor(dir).ProcessAsync(Post("<dave@example.com>", [$"<{List}>", "<secret@lists.example.org>"], Encrypt(List)));
        Assert.Equal(FilterVerdictKind.Reject, d.Kind);
    }

    [Fact]
    public async Task ADirectoryFailureTempfailsAndNeverDeliversUnexpanded()
    {
        FakeDirectory dir = ThreeMembers();
        dir.Unavailable = true;
        ListMessageProcessor p = Processor(dir);
        Assert.True(p.CheckRecipient("<dave@example.com>", $"<{List}>").IsTempfail);
        using FilterDecision d = await p.ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal(FilterVerdictKind.Tempfail, d.Kind);
        Assert.Equal("451 4.3.0", $"{d.Reply!.Code} {d.Reply.EnhancedCode}");
        Assert.False(d.HasModifications);
    }

    [Fact]
    public async Task AnUnreadableKeyTempfails()
    {
        FakeDirectory dir = ThreeMembers();
        dir.Keys[List] = []; // e.g. the key file vanished: the directory returns nothing usable
        using FilterDecision d = await Processor(dir).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal(FilterVerdictKind.Tempfail, d.Kind);
        Assert.Equal(ReplyTexts.LocalFailure, d.Reply);
    }

    [Fact]
    public async Task GarbledBase64IsRefusedAsUnprocessable()
    {
        var post = new ListMessage("<dave@example.com>", [$"<{List}>"], SmimeHeaders, new MemoryStream("MIIB!!!notbase64\r\n"u8.ToArray()), "Q1");
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(post);
        Assert.Equal(FilterVerdictKind.Reject, d.Kind);
        Assert.Equal(554, d.Reply!.Code);
    }

    private static IReadOnlyList<HeaderField> WithContent(string contentType, string? transferEncoding) =>
    [
        new("From", "alice@example.org"),
        new("Content-Type", contentType),
        .. transferEncoding is null ? Array.Empty<HeaderField>() : [new HeaderField("Content-Transfer-Encoding", transferEncoding)],
    ];

    private static byte[] DecryptRaw(byte[] der, string member)
    {
        var cms = new System.Security.Cryptography.Pkcs.EnvelopedCms();
        cms.Decode(der);
        cms.Decrypt(new X509Certificate2Collection(Certificate(member)));
        return cms.ContentInfo.Content;
    }

    [Theory]
    [InlineData("application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m")]
    [InlineData("application/x-pkcs7-mime; smime-type=enveloped-data; name=smime.p7m")]
    [InlineData("APPLICATION/X-PKCS7-MIME; SMIME-TYPE=\"Enveloped-Data\"")]
    [InlineData("application/pkcs7-mime; name=smime.p7m")] // no smime-type: the ContentInfo decides
    [InlineData("application/x-pkcs7-mime; name*0=\"smi\"; name*1=\"me.p7m\"")] // RFC 2231 continuation
    [InlineData("application/pkcs7-mime; name*=utf-8''%C3%A9t%C3%A9.p7m")] // RFC 2231 charset
    [InlineData("application/octet-stream; name=\"smime.p7m\"")]
    [InlineData("application/pkcs7-mime;\n\tsmime-type=enveloped-data (comment);\n\tname=smime.p7m")] // folded as a milter sees it
    public async Task EverySpellingOfAnEncryptedPostIsReKeyed(string contentType)
    {
        var post = new ListMessage("<dave@example.com>", [$"<{List}>"], WithContent(contentType, "base64"), Base64Body(Encrypt(List)), "Q1");
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(post);
        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(3, d.MembersRekeyed);
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "bob@example.org"));
    }

    [Theory]
    [InlineData("binary")]
    [InlineData("8bit")]
    [InlineData("7bit")] // wrong, but raw DER is recognised whatever the header says
    [InlineData(null)]
    public async Task RawDerBodiesAreReKeyedAndStayRaw(string? transferEncoding)
    {
        var post = new ListMessage("<dave@example.com>", [$"<{List}>"],
            WithContent("application/pkcs7-mime; smime-type=enveloped-data", transferEncoding), new MemoryStream(Encrypt(List)), "Q1");
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(post);
        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(Entity, DecryptRaw(BodyBytes(d.NewBody!), "carol@example.net"));
    }

    [Theory]
    [InlineData("7bit")]
    [InlineData(null)]
    public async Task Base64BodiesWithoutABase64HeaderAreReKeyedAsBase64(string? transferEncoding)
    {
        var post = new ListMessage("<dave@example.com>", [$"<{List}>"],
            WithContent("application/pkcs7-mime; smime-type=enveloped-data", transferEncoding), Base64Body(Encrypt(List)), "Q1");
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(post);
        Assert.Equal(FilterVerdictKind.Continue, d.Kind);
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "alice@example.org"));
    }

    public static TheoryData<string, string?, byte[], string> MalformedBodies()
    {
        byte[] der = Encrypt(List);
        byte[] base64 = Base64Body(der).ToArray();
        return new()
        {
            { "base64", "base64", "MIIB!!!notbase64\r\n"u8.ToArray(), "invalid base64 character '!'" },
            { "truncated base64", "base64", base64[..(base64.Length / 2)], "cannot be processed" },
            { "truncated DER", "binary", der[..(der.Length - 40)], "cannot be processed" },
            { "empty body", "base64", [], "cannot be processed" },
            { "quoted-printable", "quoted-printable", "=30=82\r\n"u8.ToArray(), "Content-Transfer-Encoding base64" },
            { "uuencode", "x-uuencode", "begin 644 smime.p7m\r\n"u8.ToArray(), "not supported" },
            { "unknown encoding", "x-gzip64", base64, "not supported" },
        };
    }

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public async Task MalformedBodiesGetTheUnprocessableReplyNotAnException(string what, string? transferEncoding, byte[] body, string replyPart)
    {
        var post = new ListMessage("<dave@example.com>", [$"<{List}>"],
            WithContent("application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", transferEncoding), new MemoryStream(body), "Q1");
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(post);
        Assert.True(d.Kind == FilterVerdictKind.Reject, what);
        Assert.Equal(554, d.Reply!.Code);
        Assert.Contains(replyPart, d.Reply.Text, StringComparison.Ordinal);
        Assert.Null(d.NewBody);
    }

    [Fact]
    public async Task AListWithNoDeliverableMemberTempfails()
    {
        FakeDirectory dir = NewDirectory(List, members: [Member("old@example.org", CertificateStatus.Expired)]);
        using FilterDecision d = await Processor(dir).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal(FilterVerdictKind.Tempfail, d.Kind);
        Assert.Equal(ReplyTexts.EmptyList, d.Reply);
    }

    [Fact]
    public async Task OnlyMemberModeWrapsForThatMemberAlone()
    {
        using FilterDecision d = await Processor(ThreeMembers()).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)) with { OnlyMember = "bob@example.org" });
        Assert.Equal(["bob@example.org"], d.AddRecipients);
        Assert.Equal(1, d.MembersRekeyed);
        Assert.ThrowsAny<CryptographicException>(() => DecryptAs(d.NewBody!, "alice@example.org"));
        Assert.Equal(Entity, DecryptAs(d.NewBody!, "bob@example.org"));
    }

    [Fact]
    public async Task ABounceAddressBecomesTheEnvelopeSender()
    {
        var options = new Dictionary<string, string> { [ListOptionKeys.BounceAddress] = "crypto-bounces@lists.example.org" };
        using FilterDecision d = await Processor(ThreeMembers(options: options)).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Equal("crypto-bounces@lists.example.org", d.ChangeFrom);
        using FilterDecision none = await Processor(ThreeMembers()).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)));
        Assert.Null(none.ChangeFrom);
    }

    [Fact]
    public async Task ALargeListGetsProgressBeforeTheReKeyStarts()
    {
        // Postfix's milter_content_timeout is per read: a large list must not leave it waiting in silence
        // (importing thousands of member keys on a cold cache takes seconds before any wrap happens).
        X509Certificate2 shared = PublicOnly("alice@example.org");
        ExpandedMember[] members = Enumerable.Range(0, ListMessageProcessor.LargeList)
            .Select(i => new ExpandedMember($"m{i}@example.org", shared, false, true, true, CertificateStatus.Usable, null, List))
            .ToArray();
        int progress = 0;
        using FilterDecision d = await Processor(NewDirectory(List, members: members)).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)), () =>
        {
            Interlocked.Increment(ref progress);
            return ValueTask.CompletedTask;
        });
        Assert.Equal(ListMessageProcessor.LargeList, d.MembersRekeyed);
        Assert.True(progress >= 1);

        int small = 0;
        using FilterDecision few = await Processor(ThreeMembers()).ProcessAsync(Post("<dave@example.com>", [$"<{List}>"], Encrypt(List)), () =>
        {
            Interlocked.Increment(ref small);
            return ValueTask.CompletedTask;
        });
        Assert.Equal(0, small); // a three-member re-key takes milliseconds: no PROGRESS
    }

    [Theory]
    [InlineData("<List+topic@Example.ORG>", "list@example.org")]
    [InlineData("list@example.org", "list@example.org")]
    [InlineData(" <@relay.example:list@example.org> ", "list@example.org")]
    [InlineData("<a+b+c@x.org>", "a@x.org")]
    [InlineData("<>", "")]
    public void EnvelopeAddressesAreCanonicalised(string raw, string canonical) =>
        Assert.Equal(canonical, EnvelopeAddress.Canonical(raw));

    [Fact]
    public void ListIdFollowsRfc2919()
    {
        Assert.Equal("<crypto.lists.example.org>", ListMessageProcessor.ListId("crypto@lists.example.org"));
        Assert.Equal("<a-b.x.org>", ListMessageProcessor.ListId("a b@x.org"));
    }
}
