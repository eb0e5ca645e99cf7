using MilterSecureList.Protocol.Session;
using MilterSecureList.Protocol.Wire;
using MilterSecureList.Testing;

namespace MilterSecureList.Protocol.Tests.Session;

/// <summary>A milter connection over in-memory pipes, driven by a <see cref="TestMta"/>.</summary>
internal sealed class SessionHarness : IAsyncDisposable
{
    private SessionHarness(Factory factory, RecordingObserver observer, InMemoryConnection connection, Task<MilterConnectionEndReason> run, CancellationTokenSource drain)
    {
        Factory = factory;
        Observer = observer;
        Run = run;
        Drain = drain;
        Mta = TestMta.Over(connection.Client);
        Connection = connection;
    }

    public Factory Factory { get; }

    public RecordingObserver Observer { get; }

    public Task<MilterConnectionEndReason> Run { get; }

    public CancellationTokenSource Drain { get; }

    public TestMta Mta { get; }

    public InMemoryConnection Connection { get; }

    public RecordingHandler Handler => Factory.Created[^1];

    /// <summary>Starts a session; <paramref name="wrapServer"/> may wrap the milter's side of the pipe (to observe it).</summary>
    public static SessionHarness Start(Func<RecordingHandler>? create = null, MilterSessionOptions? options = null, Func<System.IO.Pipelines.IDuplexPipe, System.IO.Pipelines.IDuplexPipe>? wrapServer = null)
    {
        var factory = new Factory(create ?? (() => new RecordingHandler()));
        var observer = new RecordingObserver();
        var connection = new InMemoryConnection();
        var drain = new CancellationTokenSource();
        var handler = new MilterConnectionHandler(factory, options, observer);
        Task<MilterConnectionEndReason> run = Task.Run(() => handler.RunAsync(wrapServer is null ? connection.Server : wrapServer(connection.Server), new MilterConnectionInfo("c1"), drain.Token));
        return new SessionHarness(factory, observer, connection, run, drain);
    }

    /// <summary>Waits for the session to end; bounded so a hang fails the test instead of blocking the run.</summary>
    public Task<MilterConnectionEndReason> EndAsync() => Run.WaitAsync(TimeSpan.FromSeconds(30));

    /// <summary>Observer lines so far (for failure messages).</summary>
    public string Log => string.Join('\n', Observer.Lines);

    public async Task OpenAsync()
    {
        await Mta.NegotiateAsync();
        Mta.Macro(MilterCommandCode.Connect, "j", "mx.test");
        await Mta.ConnectAsync("client.example", "192.0.2.1");
        await Mta.HeloAsync("client.example");
    }

    /// <summary>One message the way Postfix sends it (macros before commands). No ABORT.</summary>
    public async Task<EndOfMessageResult> MessageAsync(string queueId, string sender, string[] recipients, byte[] body, params (string Name, string Value)[] headers)
    {
        Mta.Macro(MilterCommandCode.Mail, "{mail_addr}", sender.Trim('<', '>'));
        await Mta.MailAsync(sender, "BODY=8BITMIME");
        foreach (string r in recipients)
        {
            Mta.Macro(MilterCommandCode.Recipient, "i", queueId, "{rcpt_addr}", r.Trim('<', '>'));
            await Mta.RcptAsync(r);
        }

        Mta.Macro(MilterCommandCode.Data, "i", queueId);
        if (!Mta.Skips(MilterCommandCode.Data))
        {
            await Mta.DataAsync();
        }

        foreach ((string name, string value) in headers)
        {
            Mta.Macro(MilterCommandCode.Header, "i", queueId);
            await Mta.HeaderAsync(name, value);
        }

        Mta.Macro(MilterCommandCode.EndOfHeaders, "i", queueId);
        if (!Mta.Skips(MilterCommandCode.EndOfHeaders))
        {
            await Mta.EndOfHeadersAsync();
        }

        Mta.Macro(MilterCommandCode.Body, "i", queueId);
        await Mta.BodyAsync(body);
        Mta.Macro(MilterCommandCode.EndOfMessage, "i", queueId);
        return await Mta.EndOfMessageAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Mta.DisposeAsync();
        await Connection.Client.Input.CompleteAsync();
        try
        {
            await Run.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
        }

        Drain.Dispose();
    }
}
