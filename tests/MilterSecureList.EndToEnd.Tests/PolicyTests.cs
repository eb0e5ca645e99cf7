using MilterSecureList.EndToEnd.Tests.Infrastructure;
using MilterSecureList.Testing;

namespace MilterSecureList.EndToEnd.Tests;

/// <summary>
/// The failure policy through a real Postfix: each policy case, with the reply text the sender's client sees
/// (from the swaks transcript), and what reaches smtp-sink (or that nothing does).
/// </summary>
[Collection(ListWorldCollection.Name)]
[Trait("Category", "EndToEnd")]
public sealed class PolicyTests(ListWorld world)
{
    private static string Addr(string raw) => raw.Replace("TO:", "", StringComparison.OrdinalIgnoreCase).Trim('<', '>');

    private static List<string> Recipients(IReadOnlyList<SinkMessage> got) => [.. got.SelectMany(m => m.Recipients).Select(Addr).Order()];

    private List<string> People(params string[] names) => [.. names.Select(n => world[n].Address).Order()];

    /// <summary>The server's reply line to the command that starts with <paramref name="command"/> (e.g. "RCPT TO", ".").</summary>
    internal static string ReplyTo(Swaks s, string command)
    {
        string[] lines = s.Transcript.Split('\n').Select(l => l.Trim()).ToArray();
        int i = Array.FindLastIndex(lines, l => l.StartsWith("->", StringComparison.Ordinal) && l[2..].TrimStart().StartsWith(command, StringComparison.Ordinal));
        Assert.True(i >= 0, $"no {command} in the transcript: {s}");
        string? reply = lines.Skip(i + 1).FirstOrDefault(l => l.StartsWith('<'));
        Assert.True(reply is not null, $"no reply to {command}: {s}");
        return reply[(reply.IndexOf(' ', StringComparison.Ordinal) + 1)..];
    }

    private async Task AssertNothingDeliveredAsync(string subject)
    {
        // The reply came at end of DATA, so Postfix never queued the message: nothing can arrive later.
        await world.Postfix.WaitForQueueEmptyAsync(TimeSpan.FromSeconds(30));
        Assert.Empty(world.ReceivedNow(subject));
    }

    [Fact]
    public async Task Plaintext_to_an_encrypted_list_is_refused_naming_where_to_get_the_certificate()
    {
        const string subject = "policy plaintext";
        string post = await world.PlainPostAsync(world["alice"].Address, ListWorld.Crypto, subject, "not encrypted");
        Swaks s = await world.SendAsync(world["alice"].Address, [ListWorld.Crypto], post);
        Assert.NotEqual(0, s.ExitCode);
        Assert.Equal("550 5.7.1 <crypto@lists.e2e.test> accepts only S/MIME mail encrypted to the list certificate; get the certificate from the list owner <owner@e2e.test> and send again encrypted",
            ReplyTo(s, "."));
        await AssertNothingDeliveredAsync(subject);
    }

    [Fact]
    public async Task Plaintext_pass_list_delivers_the_message_unchanged_to_members()
    {
        const string subject = "policy plaintext pass";
        const string text = "plain text for a list that passes plaintext";
        string post = await world.PlainPostAsync(world["dave"].Address, ListWorld.Plain, subject, text);
        Swaks s = await world.SendAsync(world["dave"].Address, [ListWorld.Plain], post);
        Assert.True(s.Accepted, s.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        Assert.Equal(People("alice", "bob"), Recipients(got));
        Assert.Equal(text, got[0].Body.TrimEnd('\n')); // smtp-sink ends its dump with a blank line
        Assert.Contains("X-SecureList: 2 members of plain@lists.e2e.test; plaintext passed unchanged", got[0].Headers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Post_not_encrypted_to_the_list_key_is_refused_with_the_list_certificate_fingerprint()
    {
        const string subject = "policy wrong key";
        string post = await world.OpensslPostAsync(world["alice"].Address, ListWorld.Crypto, subject, Smime.Entity("to mallory only"), [world["mallory"].CertPath], "-aes256");
        Swaks s = await world.SendAsync(world["alice"].Address, [ListWorld.Crypto], post);
        Assert.NotEqual(0, s.ExitCode);
        Assert.Equal($"550 5.7.1 message is not encrypted to the certificate of <crypto@lists.e2e.test>; encrypt to the list certificate with SHA-256 fingerprint {world.Fingerprint(ListWorld.Crypto)}",
            ReplyTo(s, "."));
        await AssertNothingDeliveredAsync(subject);
    }

    [Fact]
    public async Task Member_with_expired_certificate_is_skipped_and_the_owner_gets_a_notice()
    {
        const string subject = "policy skip";
        byte[] entity = Smime.Entity("erin's certificate has expired");
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Skip, subject, entity, [world.ListCert(ListWorld.Skip)], "-aes256");
        Swaks s = await world.SendAsync(world["dave"].Address, [ListWorld.Skip], post);
        Assert.True(s.Accepted, s.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        Assert.Equal(People("alice"), Recipients(got));
        Assert.Equal(entity, await world.OpensslDecryptAsync(got[0], world["alice"]));
        Assert.Null(await world.OpensslDecryptAsync(got[0], world["erin"]));

        // The notice goes through the same Postfix ([Notices] SmtpServer) to the owner, from the null sender.
        IReadOnlyList<SinkMessage> notices = await world.ReceivedAsync("[skip@lists.e2e.test] members skipped: no usable certificate");
        SinkMessage notice = Assert.Single(notices);
        Assert.Equal([ListWorld.Owner], notice.Recipients.Select(Addr));
        Assert.Contains("erin@e2e.test", notice.Body, StringComparison.Ordinal);
        Assert.Contains("expired", notice.Body, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Member_with_expired_certificate_tempfails_the_post_when_the_list_says_so()
    {
        const string subject = "policy strict";
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Strict, subject, Smime.Entity("strict"), [world.ListCert(ListWorld.Strict)], "-aes256");
        Swaks s = await world.SendAsync(world["dave"].Address, [ListWorld.Strict], post);
        Assert.NotEqual(0, s.ExitCode);
        Assert.Equal("451 4.7.0 list member <erin@e2e.test> has no usable certificate; the list owner has to fix it, try again later", ReplyTo(s, "."));
        await AssertNothingDeliveredAsync(subject);
    }

    [Fact]
    public async Task Non_member_sender_on_a_members_only_list_is_refused_at_RCPT_and_a_member_is_not()
    {
        const string subject = "policy closed";
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Closed, subject, Smime.Entity("closed"), [world.ListCert(ListWorld.Closed)], "-aes256");
        Swaks refused = await world.SendAsync(world["dave"].Address, [ListWorld.Closed], post);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Equal("550 5.7.1 <closed@lists.e2e.test> accepts posts from its members only", ReplyTo(refused, "RCPT TO"));
        Assert.DoesNotContain(refused.Transcript.Split('\n'), l => l.Trim().StartsWith("-> DATA", StringComparison.Ordinal));

        Swaks accepted = await world.SendAsync(world["carol"].Address, [ListWorld.Closed], post);
        Assert.True(accepted.Accepted, accepted.ToString());
        Assert.Equal(People("alice", "carol"), Recipients(await world.ReceivedAsync(subject)));
    }

    [Fact]
    public async Task Detail_and_upper_case_list_addresses_are_recognised_and_other_recipients_pass()
    {
        const string subject = "policy detail case";
        const string rcpt = "Crypto+Topic@LISTS.E2E.TEST";
        byte[] entity = Smime.Entity("plus detail");
        string post = await world.OpensslPostAsync(world["mallory"].Address, rcpt, subject, entity, [world.ListCert(ListWorld.Crypto)], "-aes256");
        Swaks s = await world.SendAsync(world["mallory"].Address, [rcpt, "outsider@e2e.test"], post);
        Assert.True(s.Accepted, s.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        List<string> rcpts = Recipients(got);
        Assert.Equal([.. People("alice", "bob", "carol", "gina", "nina").Append("outsider@e2e.test").Order()], rcpts);
        Assert.Equal(entity, await world.OpensslDecryptAsync(got[0], world["carol"]));
    }

    [Fact]
    public async Task Two_lists_in_one_message_go_to_the_union_of_members_once_each()
    {
        const string subject = "policy two lists";
        byte[] entity = Smime.Entity("to two lists");
        string post = await world.OpensslPostAsync(world["mallory"].Address, ListWorld.Crypto, subject, entity,
            [world.ListCert(ListWorld.Crypto), world.ListCert(ListWorld.Second)], "-aes256");
        Swaks s = await world.SendAsync(world["mallory"].Address, [ListWorld.Crypto, ListWorld.Second], post);
        Assert.True(s.Accepted, s.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        Assert.Equal(People("alice", "bob", "carol", "dave", "gina", "nina"), Recipients(got)); // alice is in both: once
        Assert.Contains("X-SecureList: 6 members re-keyed for crypto@lists.e2e.test, second@lists.e2e.test", got[0].Headers, StringComparison.Ordinal);
        Assert.Equal(entity, await world.OpensslDecryptAsync(got[0], world["dave"]));
        Assert.Equal(entity, await world.OpensslDecryptAsync(got[0], world["alice"]));
        Assert.Equal(entity, await world.CmsutilDecryptAsync(got[0]));
        Assert.Null(await world.OpensslDecryptAsync(got[0], world["mallory"]));
    }

    [Fact]
    public async Task Nested_list_expands_to_the_inner_list_members()
    {
        const string subject = "policy nested";
        byte[] entity = Smime.Entity("to the nested list");
        string post = await world.OpensslPostAsync(world["mallory"].Address, ListWorld.All, subject, entity, [world.ListCert(ListWorld.All)], "-aes256");
        Swaks s = await world.SendAsync(world["mallory"].Address, [ListWorld.All], post);
        Assert.True(s.Accepted, s.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        Assert.Equal(People("alice", "bob", "carol", "dave", "gina", "nina"), Recipients(got));
        Assert.Equal(entity, await world.OpensslDecryptAsync(got[0], world["bob"]));
        Assert.Equal(entity, await world.GpgsmDecryptAsync(got[0]));
    }

    [Fact]
    public async Task Sender_copy_follows_the_list_option()
    {
        // quiet@ has self-copy=no: alice (a member) posts and only bob receives.
        const string subject = "policy self-copy off";
        byte[] entity = Smime.Entity("no copy for me");
        string post = await world.OpensslPostAsync(world["alice"].Address, ListWorld.Quiet, subject, entity, [world.ListCert(ListWorld.Quiet)], "-aes256");
        Swaks s = await world.SendAsync(world["alice"].Address, [ListWorld.Quiet], post);
        Assert.True(s.Accepted, s.ToString());
        IReadOnlyList<SinkMessage> got = await world.ReceivedAsync(subject);
        Assert.Equal(People("bob"), Recipients(got));

        // The default (second@): alice posts and gets her own copy.
        const string subject2 = "policy self-copy default";
        string post2 = await world.OpensslPostAsync(world["alice"].Address, ListWorld.Second, subject2, entity, [world.ListCert(ListWorld.Second)], "-aes256");
        Swaks s2 = await world.SendAsync(world["alice"].Address, [ListWorld.Second], post2);
        Assert.True(s2.Accepted, s2.ToString());
        Assert.Equal(People("alice", "dave"), Recipients(await world.ReceivedAsync(subject2)));
    }
}

/// <summary><c>securelist check</c> run as an operator runs it, against the same directory.</summary>
[Collection(ListWorldCollection.Name)]
[Trait("Category", "EndToEnd")]
public sealed class CheckCommandTests(ListWorld world)
{
    [Fact]
    public async Task Check_prints_the_verdict_and_every_modification_for_a_good_post()
    {
        byte[] entity = Smime.Entity("checked offline");
        string post = await world.OpensslPostAsync(world["dave"].Address, ListWorld.Crypto, "check good", entity, [world.ListCert(ListWorld.Crypto)], "-aes256");
        string output = Path.Combine(world.Dir, "checked.eml");
        (int rc, string o, string e) = await SecureListCli.RunAsync(world.Config, "check", "--from", world["dave"].Address, "--rcpt", "Crypto+x@lists.e2e.test",
            "--rcpt", "other@e2e.test", "--in", post, "--out", output);
        Assert.True(rc == 0, $"exit {rc}: {e}{o}");
        string[] lines = o.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.Equal("250 2.0.0 continue", lines[0]);
        Assert.Contains("RCPT <Crypto+x@lists.e2e.test>: list", lines);
        Assert.Contains("RCPT <other@e2e.test>: not a list", lines);
        Assert.Contains("verdict: continue (re-keyed)", lines);
        Assert.Contains("DELRCPT <Crypto+x@lists.e2e.test>", lines);
        Assert.DoesNotContain("DELRCPT <other@e2e.test>", lines);
        foreach (string m in new[] { "alice", "bob", "carol", "gina", "nina" })
        {
            Assert.Contains($"ADDRCPT <{m}@e2e.test>", lines);
        }

        Assert.Contains("ADDHEADER List-Id: <crypto.lists.e2e.test>", lines);
        Assert.Contains("ADDHEADER X-SecureList: 5 members re-keyed for crypto@lists.e2e.test (rekey mode)", lines);
        Assert.Contains(lines, l => l.StartsWith("REPLBODY ", StringComparison.Ordinal) && l.EndsWith("(5 members re-keyed)", StringComparison.Ordinal));

        // --out is the message as members receive it: bob decrypts it with openssl.
        string dec = Path.Combine(world.Dir, "checked.dec");
        await Tool.OpensslAsync("cms", "-decrypt", "-binary", "-recip", world["bob"].CertPath, "-inkey", world["bob"].KeyPath, "-in", output, "-out", dec);
        Assert.Equal(entity, await File.ReadAllBytesAsync(dec));
    }

    [Fact]
    public async Task Check_prints_the_reject_reply_for_a_plaintext_post()
    {
        string post = await world.PlainPostAsync(world["dave"].Address, ListWorld.Crypto, "check plain", "hello");
        (int rc, string o, string e) = await SecureListCli.RunAsync(world.Config, "check", "--from", world["dave"].Address, "--rcpt", ListWorld.Crypto, "--in", post);
        Assert.True(rc == 65, $"exit {rc} (expected 65 = EX_DATAERR for a reject): {e}{o}");
        string[] lines = o.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.StartsWith("550 5.7.1 <crypto@lists.e2e.test> accepts only S/MIME mail encrypted to the list certificate", lines[0], StringComparison.Ordinal);
        Assert.Contains("verdict: reject (plaintext to crypto@lists.e2e.test)", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("ADDRCPT", StringComparison.Ordinal) || l.StartsWith("DELRCPT", StringComparison.Ordinal));
    }
}
