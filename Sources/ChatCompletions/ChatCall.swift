import Foundation
import Logging
import NIOCore
import NIOHTTP1
import StreamingHTTP
import Synchronization

/// One chat-completions request in flight: its attempts (retried as the retry policy allows,
/// before the stream begins), its two watchdogs, and its end, reported exactly once.
///
/// The reply is read on its connection's event loop: each piece of the body is parsed there and
/// its events handed straight to `receive`, with no task in between. A voice turn's first words
/// then reach the speaking task in one hand-off.
public final class ChatCall: Sendable {
    private enum Phase {
        case ready
        case attempting(HTTPExchange)
        case waitingToRetry(Task<Void, Never>)
        case done
    }

    private struct State {
        var phase = Phase.ready
        var completion: (@Sendable (Result<Void, any Error>) -> Void)?
        var watchdog: Task<Void, Never>?
        var firstToken = false
        /// When the first attempt's request went out: a retried request's time to its first
        /// token counts the attempts before it.
        var sentAt: NIODeadline?
    }

    private let client: ChatCompletionsClient
    /// The request's JSON.
    private let body: ByteBuffer
    private let receive: @Sendable (ChatStreamEvent) -> Void
    /// Hears the model's time to its first token, retries included.
    private let firstTokenTime: (@Sendable (Duration) -> Void)?
    private let state = Mutex(State())

    init(client: ChatCompletionsClient, body: ByteBuffer, firstToken: (@Sendable (Duration) -> Void)? = nil, receive: @escaping @Sendable (ChatStreamEvent) -> Void) {
        self.client = client
        self.body = body
        self.firstTokenTime = firstToken
        self.receive = receive
    }

    /// Sends the request and returns at once. `completion` is called once: after `.finished`
    /// was received, or with the error (a `ChatError`, or `CancellationError` after `cancel()`).
    public func start(_ completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let started = self.state.withLock { state -> Bool in
            guard case .ready = state.phase else { return false }
            state.completion = completion
            return true
        }
        guard started else { return completion(.failure(CancellationError())) }
        // The request first: the watchdog's task is made while it is on its way.
        switch self.client.target {
        case .success(let target): self.attempt(target, 0)
        case .failure(let error): return self.finish(.failure(ChatError.transport("\(error)")))
        }
        let timeouts = self.client.timeouts
        let clock = self.client.clock
        // Strong references throughout: the call lives until it ends, whoever holds it.
        let watchdog = Task {
            do {
                try await clock.sleep(for: timeouts.firstToken)
                if !self.state.withLock({ $0.firstToken }) { return self.finish(.failure(ChatError.firstTokenTimeout(timeouts.firstToken))) }
                try await clock.sleep(for: max(.zero, timeouts.deadline - timeouts.firstToken))
                self.finish(.failure(ChatError.deadlineExceeded(timeouts.deadline)))
            } catch {
                // Cancelled: the call ended first.
            }
        }
        let live = self.state.withLock { state -> Bool in
            if case .done = state.phase { return false }
            state.watchdog = watchdog
            return true
        }
        // (Over, or cancelled, while the watchdog was being made.)
        if !live { watchdog.cancel() }
    }

    /// Stops the request; the completion gets a `CancellationError` unless the reply already ended.
    public func cancel() {
        self.finish(.failure(CancellationError()))
    }

    private func attempt(_ target: HTTPTarget, _ retry: Int) {
        let attempt = ChatAttempt(
            sent: { time in self.state.withLock { $0.sentAt = $0.sentAt ?? time } }, forward: { event, readAt in self.forward(event, readAt: readAt) },
            ended: { result, streamed in self.attemptEnded(target, retry, result, streamed: streamed) })
        let exchange = HTTPExchange(target: target, body: self.body, receiver: attempt)
        // In place before it starts: a failure heard at once may already move the call on.
        let current = self.state.withLock { state -> Bool in
            guard case .done = state.phase else {
                state.phase = .attempting(exchange)
                return true
            }
            return false
        }
        if current { self.client.http.execute(exchange) }
    }

    /// An event from the reply, from the read at `readAt`; false once the call has ended (the
    /// attempt then stops reading).
    private func forward(_ event: ChatStreamEvent, readAt: NIODeadline) -> Bool {
        let (live, firstTokenSince) = self.state.withLock { state -> (Bool, NIODeadline?) in
            if case .done = state.phase { return (false, nil) }
            switch event {
            case .content, .refusal, .toolCalls:
                defer { state.firstToken = true }
                return (true, state.firstToken ? nil : state.sentAt)
            case .finished:
                return (true, nil)
            }
        }
        guard live else { return false }
        if let sentAt = firstTokenSince { self.firstTokenTime?(.nanoseconds((readAt - sentAt).nanoseconds)) }
        self.receive(event)
        if case .finished = event { self.finish(.success(())) }
        return true
    }

    private func attemptEnded(_ target: HTTPTarget, _ retry: Int, _ result: Result<ChatAttempt.Outcome, any Error>, streamed: Bool) {
        let status: Int
        let headers: [(String, String)]
        let detail: APIErrorBody.Detail?
        switch result {
        case .success(.streamed):
            // The bytes ended without `[DONE]` after a finish reason: `.finished` was forwarded.
            return self.finish(.success(()))
        case .success(.refused(let code, let head, let body)):
            status = code
            headers = head
            detail = try? JSONDecoder().decode(APIErrorBody.self, from: Data(body)).error
        case .failure(let error as ChatError):
            return self.finish(.failure(error))
        case .failure(let error):
            if error is CancellationError { return self.finish(.failure(CancellationError())) }
            if streamed {
                // The connection broke mid-stream (a chunked body cut short reads as a parser error).
                self.client.logger.debug("chat stream broke", metadata: ["error": "\(TransportFailure.describe(error))"])
                return self.finish(.failure(ChatError.endedEarly))
            }
            // A server whose certificate is not trusted will not become trusted by asking again.
            if TransportFailure.handshakeReason(error) != nil { return self.finish(.failure(ChatError.transport(TransportFailure.describe(error)))) }
            // Not connected at all: worth the retries a 503 would get.
            guard let delay = self.client.retry.delay(status: 503, headers: [], errorCode: nil, retry: retry, jitter: self.client.jitter()) else {
                return self.finish(.failure(ChatError.transport(TransportFailure.describe(error))))
            }
            self.client.logger.notice("chat request failed, trying again", metadata: ["error": "\(TransportFailure.describe(error))", "retry_in": "\(delay)"])
            return self.retry(target, retry + 1, after: delay)
        }
        guard let delay = self.client.retry.delay(status: status, headers: headers, errorCode: detail?.code, retry: retry, jitter: self.client.jitter()) else {
            return self.finish(.failure(ChatCompletionsClient.error(status: status, detail: detail)))
        }
        self.client.logger.notice(
            "chat request refused, trying again", metadata: ["http.status": "\(status)", "error.code": "\(detail?.code ?? "")", "retry_in": "\(delay)"])
        self.retry(target, retry + 1, after: delay)
    }

    private func retry(_ target: HTTPTarget, _ retry: Int, after delay: Duration) {
        let clock = self.client.clock
        let wait = Task {
            do { try await clock.sleep(for: delay) } catch { return }
            self.attempt(target, retry)
        }
        let current = self.state.withLock { state -> Bool in
            guard case .done = state.phase else {
                state.phase = .waitingToRetry(wait)
                return true
            }
            return false
        }
        if !current { wait.cancel() }
    }

    /// Ends the call once: stops what is in flight and tells the completion.
    private func finish(_ result: Result<Void, any Error>) {
        let ended = self.state.withLock { state -> (Phase, Task<Void, Never>?, (@Sendable (Result<Void, any Error>) -> Void)?)? in
            if case .done = state.phase { return nil }
            defer {
                state.phase = .done
                state.watchdog = nil
                state.completion = nil
            }
            return (state.phase, state.watchdog, state.completion)
        }
        guard let (phase, watchdog, completion) = ended else { return }
        watchdog?.cancel()
        switch phase {
        case .attempting(let exchange):
            // A finished reply's connection goes back to the pool with the rest of its bytes.
            if case .failure = result { exchange.cancel() }
        case .waitingToRetry(let wait):
            wait.cancel()
        case .ready, .done:
            break
        }
        completion?(result)
    }
}

/// One HTTP attempt, read on the event loop: a 200 is parsed as it arrives and its events handed
/// on; any other status is collected for its error envelope.
final class ChatAttempt: HTTPResponseReceiver {
    enum Outcome: Sendable {
        /// The stream was read (its events, `.finished` included, went to `forward`).
        case streamed
        /// Another status, with its headers and (up to 64 KiB of) its body.
        case refused(status: Int, headers: [(String, String)], body: [UInt8])
    }

    private struct Reading {
        var status: Int?
        var parser = ServerSentEventParser()
        var assembler = ChatStreamAssembler()
        var headers: [(String, String)] = []
        var errorBody: [UInt8] = []
        /// The caller stopped listening: the rest is skipped.
        var stopped = false
    }

    /// Hears when the request's last byte went out.
    private let sent: @Sendable (NIODeadline) -> Void
    /// Hands on one event, with the time of the read that brought it; false when nobody listens any more.
    private let forward: @Sendable (ChatStreamEvent, NIODeadline) -> Bool
    /// The attempt's outcome, and whether a 200 had arrived (the stream had then begun and is never retried).
    private let whenEnded: @Sendable (Result<Outcome, any Error>, Bool) -> Void
    private let reading = Mutex(Reading())

    init(
        sent: @escaping @Sendable (NIODeadline) -> Void, forward: @escaping @Sendable (ChatStreamEvent, NIODeadline) -> Bool,
        ended: @escaping @Sendable (Result<Outcome, any Error>, Bool) -> Void
    ) {
        self.sent = sent
        self.forward = forward
        self.whenEnded = ended
    }

    func requestSent(at time: NIODeadline) {
        self.sent(time)
    }

    func receiveHead(_ head: HTTPResponseHead) {
        self.reading.withLock { reading in
            reading.status = Int(head.status.code)
            if head.status != .ok { reading.headers = head.headers.map { ($0.name, $0.value) } }
        }
    }

    func receiveBody(_ buffer: ByteBuffer) throws(ChatError) {
        let readAt = NIODeadline.now()
        let events = try self.reading.withLock { reading throws(ChatError) -> [ChatStreamEvent] in
            guard !reading.stopped else { return [] }
            guard reading.status == 200 else {
                if reading.errorBody.count < 64 << 10 { reading.errorBody += buffer.readableBytesView.prefix((64 << 10) - reading.errorBody.count) }
                return []
            }
            var events: [ChatStreamEvent] = []
            for event in reading.parser.feed(buffer.readableBytesView) where !reading.assembler.isDone {
                events += try reading.assembler.consume(event)
            }
            return events
        }
        self.hand(events, readAt: readAt)
    }

    private func hand(_ events: [ChatStreamEvent], readAt: NIODeadline) {
        for event in events where !self.forward(event, readAt) {
            self.reading.withLock { $0.stopped = true }
            return
        }
    }

    func ended(_ result: Result<Void, any Error>) {
        let streamed = self.reading.withLock { $0.status == 200 }
        if case .failure(let error) = result { return self.whenEnded(.failure(error), streamed) }
        do {
            let readAt = NIODeadline.now()
            let (events, outcome) = try self.reading.withLock { reading throws(ChatError) -> ([ChatStreamEvent], Outcome) in
                guard reading.status == 200 else {
                    return ([], .refused(status: reading.status ?? 0, headers: reading.headers, body: reading.errorBody))
                }
                return (reading.stopped ? [] : try reading.assembler.end(), .streamed)
            }
            self.hand(events, readAt: readAt)
            self.whenEnded(.success(outcome), streamed)
        } catch {
            self.whenEnded(.failure(error), streamed)
        }
    }
}
