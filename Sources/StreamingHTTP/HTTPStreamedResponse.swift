import NIOCore
import NIOHTTP1
import Synchronization

/// A response for a caller in a task: its head, then its body as it arrives.
public struct HTTPStreamedResponse: Sendable {
    public let head: HTTPResponseHead
    /// Ends after the body's last byte; throws how the exchange broke off. Dropping it, or
    /// cancelling the reading task, stops the exchange.
    public let body: AsyncThrowingStream<ByteBuffer, any Error>

    /// The whole body, or nil when it is longer than `limit` bytes.
    public func collect(upTo limit: Int) async throws -> ByteBuffer? {
        var collected = ByteBuffer()
        for try await piece in self.body {
            guard collected.readableBytes + piece.readableBytes <= limit else { return nil }
            collected.writeImmutableBuffer(piece)
        }
        return collected
    }
}

extension StreamingHTTPClient {
    /// Posts `body` to `target` and returns once the response's head is in. The exchange fails
    /// with `HTTPTransportError.timedOut` when it is not over within `timeout`, body included;
    /// cancelling the task stops it.
    public func post(_ target: HTTPTarget, body: ByteBuffer, timeout: Duration) async throws -> HTTPStreamedResponse {
        let receiver = StreamedReceiver()
        let exchange = HTTPExchange(target: target, body: body, receiver: receiver)
        receiver.start(exchange, on: self, timeout: timeout)
        return try await withTaskCancellationHandler {
            let head = try await receiver.head()
            return HTTPStreamedResponse(head: head, body: receiver.body)
        } onCancel: {
            exchange.cancel()
        }
    }
}

/// Hands an exchange's response to a task: the head through a continuation, the body through a stream.
private final class StreamedReceiver: HTTPResponseReceiver {
    private struct State {
        var head: Result<HTTPResponseHead, any Error>?
        var waiter: CheckedContinuation<HTTPResponseHead, any Error>?
        var timer: Scheduled<Void>?
        var timedOut = false
    }

    let body: AsyncThrowingStream<ByteBuffer, any Error>
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let state = Mutex(State())

    init() {
        (self.body, self.continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self, throwing: (any Error).self)
    }

    func start(_ exchange: HTTPExchange, on client: StreamingHTTPClient, timeout: Duration) {
        let timer = client.group.any().scheduleTask(in: TimeAmount(timeout)) {
            self.state.withLock { $0.timedOut = true }
            exchange.cancel()
        }
        self.state.withLock { $0.timer = timer }
        self.continuation.onTermination = { termination in
            if case .cancelled = termination { exchange.cancel() }
        }
        client.execute(exchange)
    }

    func head() async throws -> HTTPResponseHead {
        try await withCheckedThrowingContinuation { continuation in
            let head = self.state.withLock { state in
                if state.head == nil { state.waiter = continuation }
                return state.head
            }
            if let head { continuation.resume(with: head) }
        }
    }

    func receiveHead(_ head: HTTPResponseHead) {
        self.settle(.success(head))
    }

    func receiveBody(_ buffer: ByteBuffer) throws {
        self.continuation.yield(buffer)
    }

    func ended(_ result: Result<Void, any Error>) {
        let (timer, timedOut) = self.state.withLock { state in
            defer { state.timer = nil }
            return (state.timer, state.timedOut)
        }
        timer?.cancel()
        switch result {
        case .success:
            self.settle(.failure(HTTPTransportError.closedEarly))
            self.continuation.finish()
        case .failure(let error):
            let error = timedOut ? HTTPTransportError.timedOut : error
            self.settle(.failure(error))
            self.continuation.finish(throwing: error)
        }
    }

    /// The head, or why there is none; only the first outcome counts.
    private func settle(_ head: Result<HTTPResponseHead, any Error>) {
        let waiter = self.state.withLock { state -> CheckedContinuation<HTTPResponseHead, any Error>? in
            guard state.head == nil else { return nil }
            state.head = head
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: head)
    }
}
