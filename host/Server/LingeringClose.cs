using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace ActorStep.Host.Server;

/// <summary>
/// At shutdown, a connection's end (FIN) waits until the client has closed its side (or <see cref="Timeout"/>): Kestrel's last
/// frames (a ResumeStream's status, the RST_STREAM(NO_ERROR) that follows it, GOAWAY) reach the client first and it closes once
/// its streams are done. Without this, a client that reads them a moment late (a busy process) meets the end of the connection
/// first, and .NET's HTTP/2 client then drops a stream whose request side was still open, status and all: the caller sees
/// "the HTTP/2 server closed the connection" instead of UNAVAILABLE. Connections Kestrel closes while the server runs close at once.
/// </summary>
public static class LingeringClose
{
    /// <summary>How long a client may take to close; Kestrel's own shutdown bound (<see cref="ServerHost.ShutdownTimeout"/>) still applies.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    /// <summary>A connection middleware (<c>ListenOptions.Use</c>) that lingers once <paramref name="stopping"/> is cancelled.</summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(Func<CancellationToken> stopping) => next => async connection =>
    {
        var transport = connection.Transport;
        var deferred = new DeferredCompletion(transport);
        connection.Transport = deferred;
        try
        {
            await next(connection);
        }
        finally
        {
            connection.Transport = transport;
            if (stopping().IsCancellationRequested && deferred.Error is null) await DrainUntilClosedAsync(transport.Input, connection.ConnectionClosed);
            await transport.Output.CompleteAsync(deferred.Error);
            await transport.Input.CompleteAsync(deferred.Error);
        }
    };

    /// <summary>Reads and drops what the client still sends until it closes, the connection is aborted, or <see cref="Timeout"/>.</summary>
    private static async Task DrainUntilClosedAsync(PipeReader input, CancellationToken closed)
    {
        using var linger = CancellationTokenSource.CreateLinkedTokenSource(closed);
        linger.CancelAfter(Timeout);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(linger.Token);
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled) return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException or ConnectionResetException)
        {
            // Timed out, aborted, or reset by the client: the connection ends now.
        }
    }

    /// <summary>The transport as Kestrel sees it: everything goes through, except that completing either side is only noted.</summary>
    private sealed class DeferredCompletion(IDuplexPipe transport) : IDuplexPipe
    {
        private readonly Reader _input = new(transport.Input);
        private readonly Writer _output = new(transport.Output);

        public PipeReader Input => _input;
        public PipeWriter Output => _output;

        /// <summary>An error Kestrel ended the connection with (then there is nothing to linger for).</summary>
        public Exception? Error => _output.Error ?? _input.Error;

        private sealed class Reader(PipeReader inner) : PipeReader
        {
            public Exception? Error { get; private set; }
            public override bool TryRead(out ReadResult result) => inner.TryRead(out result);
            public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => inner.ReadAsync(cancellationToken);
            public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);
            public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);
            public override void CancelPendingRead() => inner.CancelPendingRead();
            public override void Complete(Exception? exception = null) => Error ??= exception;
        }

        private sealed class Writer(PipeWriter inner) : PipeWriter
        {
            public Exception? Error { get; private set; }
            public override void Advance(int bytes) => inner.Advance(bytes);
            public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
            public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
            public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);
            public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
                inner.WriteAsync(source, cancellationToken);
            public override void CancelPendingFlush() => inner.CancelPendingFlush();
            public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;
            public override long UnflushedBytes => inner.UnflushedBytes;
            public override void Complete(Exception? exception = null) => Error ??= exception;
        }
    }
}
