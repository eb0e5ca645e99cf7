using System.Buffers;
using FsCheck;
using FsCheck.Fluent;
using MilterSecureList.Protocol.Commands;
using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Protocol.Tests.Wire;

/// <summary>Bounded random testing of the frame reader, the decoder and the whole session.</summary>
public class FuzzTests
{
    private static readonly byte[] s_codes = "ODCHMRTLNBEAQKUXc\0"u8.ToArray();

    /// <summary>Random bytes through reader + decoder: either frames/commands or a typed violation, nothing else.</summary>
    [Fact]
    public void FrameReaderAndDecoderOnlyEverThrowTypedViolations()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), ArbMap.Default.ArbFor<int>(), (bytes, cutSeed) =>
        {
            int cut = bytes.Length == 0 ? 0 : Math.Abs(cutSeed % bytes.Length);
            ReadOnlySequence<byte> buffer = cut == 0 ? new ReadOnlySequence<byte>(bytes) : SegmentedSequence.Create(bytes, cut);
            try
            {
                while (MilterFrameReader.TryReadFrame(ref buffer, 65535, out MilterFrame f))
                {
                    MilterCommandDecoder.Decode(f);
                }
            }
            catch (MilterProtocolException)
            {
            }
        }).QuickCheckThrowOnFailure();
    }

    /// <summary>Well-framed random commands: the decoder sees every code with arbitrary payloads.</summary>
    [Fact]
    public void DecoderHandlesArbitraryPayloadsForEveryCode()
    {
        Gen<(byte, byte[])> gen = Gen.Elements(s_codes).SelectMany(c => ArbMap.Default.GeneratorFor<byte[]>().Select(p => (c, p)));
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            byte[] frame = MilterFrameReaderTests.RawFrame((char)t.Item1, t.Item2);
            var buffer = new ReadOnlySequence<byte>(frame);
            Assert.True(MilterFrameReader.TryReadFrame(ref buffer, 65535, out MilterFrame f));
            try
            {
                MilterCommandDecoder.Decode(f);
            }
            catch (MilterProtocolException)
            {
            }
        }).QuickCheckThrowOnFailure();
    }

    /// <summary>Random frame sequences against the real session: it always ends (no hang) and never with an unexpected exception.</summary>
    [Fact]
    public void SessionSurvivesRandomFrameSequences()
    {
        Gen<byte[]> frameGen = Gen.Elements(s_codes).SelectMany(c => Gen.Choose(0, 40).SelectMany(n => Gen.ArrayOf(Gen.Elements<byte>(0, (byte)'a', (byte)'<', (byte)'>', 6, 0xFF), n)).Select(p => MilterFrameReaderTests.RawFrame((char)c, p)));
        Gen<byte[][]> seqGen = Gen.Choose(1, 25).SelectMany(n => Gen.ArrayOf(frameGen, n));
        var optneg = MilterFrameReaderTests.RawFrame('O', Convert.FromHexString("00000006000001FF001FFFFF"));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(150), Prop.ForAll(seqGen.ToArbitrary(), frames =>
        {
            var conn = new InMemoryConnection();
            var handler = new MilterConnectionHandler(new Session.Factory(() => new Session.RecordingHandler()), new MilterSessionOptions { SpoolThreshold = 100 });
            Task<MilterConnectionEndReason> run = handler.RunAsync(conn.Server, new MilterConnectionInfo("fuzz"));
            Task drainReplies = conn.Client.Input.AsStream().CopyToAsync(Stream.Null);
            byte[] all = [.. optneg, .. frames.SelectMany(f => f)];
            conn.Client.Output.WriteAsync(all).AsTask().GetAwaiter().GetResult();
            conn.Client.Output.Complete();
            MilterConnectionEndReason reason = run.WaitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
            drainReplies.WaitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
            Assert.True(reason is MilterConnectionEndReason.Quit or MilterConnectionEndReason.PeerClosed or MilterConnectionEndReason.ProtocolViolation, reason.ToString());
        }));
    }
}
