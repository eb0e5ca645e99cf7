using System.IO.Pipelines;

namespace MilterSecureList.Testing;

/// <summary>An in-memory connection: <see cref="Server"/> for the milter, <see cref="Client"/> for the test MTA.</summary>
public sealed class InMemoryConnection
{
    public InMemoryConnection()
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        Server = new DuplexPipe(toServer.Reader, toClient.Writer);
        Client = new DuplexPipe(toClient.Reader, toServer.Writer);
    }

    public IDuplexPipe Server { get; }

    public IDuplexPipe Client { get; }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
