import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Where and how to reach an OpenAI-compatible endpoint.
public struct ChatEndpoint: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The API root the paths go under, as `OPENAI_BASE_URL` gives it: `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` (Ollama), `http://localhost:8000/v1` (vLLM). A query (an Azure-style
    /// `?api-version=…`) stays at the end of every request's URL.
    public var baseURL: String
    /// Sent as `Authorization: Bearer …`, or in `keyHeader` when set (Azure-style gateways use
    /// `api-key`). nil for local servers that take no key.
    public var apiKey: String?
    public var keyHeader: String?
    public var model: String
    public var tokenLimitField: TokenLimitField

    public init(baseURL: String, apiKey: String?, keyHeader: String? = nil, model: String, tokenLimitField: TokenLimitField = .maxTokens) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.keyHeader = keyHeader
        self.model = model
        self.tokenLimitField = tokenLimitField
    }

    /// Printed without the key, however it is printed.
    public var description: String { "ChatEndpoint(\(self.baseURL), model \(self.model), key \(self.apiKey == nil ? "none" : "<redacted>"))" }
    public var debugDescription: String { self.description }
    public var customMirror: Mirror {
        Mirror(self, children: ["baseURL": self.baseURL, "model": self.model, "tokenLimitField": self.tokenLimitField], displayStyle: .struct)
    }

    /// `base` + `/chat/completions`, before any query the base carries.
    public var chatCompletionsURL: String {
        let parts = self.baseURL.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var path = String(parts[0])
        while path.hasSuffix("/") { path.removeLast() }
        return path + "/chat/completions" + (parts.count > 1 ? "?" + parts[1] : "")
    }
}

/// How long a reply may take.
public struct ChatTimeouts: Sendable, Hashable {
    /// From the request until the first text or tool call (retries included). For a voice turn,
    /// about 2 s; past it, the caller hears silence.
    public var firstToken: Duration
    /// From the request until the end of the reply.
    public var deadline: Duration

    public init(firstToken: Duration = .seconds(2), deadline: Duration = .seconds(20)) {
        self.firstToken = firstToken
        self.deadline = deadline
    }
}

/// A streaming client for `POST {base}/chat/completions`: sends the request, retries what the
/// retry policy allows before the stream begins, and yields the reply as it arrives.
///
/// The watchdogs run on an injected clock; the HTTP transport is AsyncHTTPClient.
public struct ChatCompletionsClient: Sendable {
    public let endpoint: ChatEndpoint
    public var timeouts: ChatTimeouts
    public var retry: ChatRetryPolicy
    private let http: HTTPClient
    private let clock: any Clock<Duration>
    private let logger: Logger
    /// Random numbers in 0..<1 for the backoff's jitter.
    private let jitter: @Sendable () -> Double

    public init(
        endpoint: ChatEndpoint, timeouts: ChatTimeouts = ChatTimeouts(), retry: ChatRetryPolicy = ChatRetryPolicy(), http: HTTPClient = .shared,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger, jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.retry = retry
        self.http = http
        self.clock = clock
        self.logger = logger
        self.jitter = jitter
    }

    /// A request for this endpoint's model, with its token limit field.
    public func request(
        _ messages: [ChatMessage], temperature: Double? = nil, maxTokens: Int? = nil, tools: [ToolDefinition] = [], toolChoice: String? = nil,
        responseFormat: ResponseFormat? = nil
    ) -> ChatRequest {
        ChatRequest(
            model: self.endpoint.model, messages: messages, temperature: temperature, maxTokens: maxTokens,
            tokenLimitField: self.endpoint.tokenLimitField, tools: tools, toolChoice: toolChoice, responseFormat: responseFormat)
    }

    /// The reply, streamed. The stream fails with a `ChatError`; cancelling its consumer cancels
    /// the request. It ends with `.finished`, at once: the consumer never waits for the
    /// request's own end.
    public func stream(_ request: ChatRequest) -> AsyncThrowingStream<ChatStreamEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ChatStreamEvent.self, throwing: (any Error).self)
        let task = Task {
            do {
                try await self.send(request) { event in
                    continuation.yield(event)
                    if case .finished = event { continuation.finish() }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { termination in
            if case .cancelled = termination { task.cancel() }
        }
        return stream
    }

    /// Sends the request and hands each event of the reply to `receive` as it arrives, from the
    /// task reading the response (no stream in between: a voice turn's words lose no time), under
    /// the two watchdogs: the first token and the deadline. `.finished` is the last event.
    public func send(_ request: ChatRequest, _ receive: @escaping @Sendable (ChatStreamEvent) -> Void) async throws {
        let body = request.jsonBytes
        let firstToken = Flag()
        let timeouts = self.timeouts
        let clock = self.clock
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await self.attempts(body) { event in
                    switch event {
                    case .content, .refusal, .toolCalls: firstToken.set()
                    case .finished: break
                    }
                    receive(event)
                }
            }
            group.addTask {
                try await clock.sleep(for: timeouts.firstToken)
                if !firstToken.isSet { throw ChatError.firstTokenTimeout(timeouts.firstToken) }
                try await clock.sleep(for: max(.zero, timeouts.deadline - timeouts.firstToken))
                throw ChatError.deadlineExceeded(timeouts.deadline)
            }
            defer { group.cancelAll() }
            // The reply's end, or a watchdog's error, whichever comes first.
            try await group.next()
        }
    }

    /// The whole reply: its text (refusals included) and tool calls.
    public func complete(_ request: ChatRequest) async throws -> ChatReply {
        var reply = ChatReply()
        for try await event in self.stream(request) {
            switch event {
            case .content(let text): reply.text += text
            case .refusal(let text): reply.refusal = (reply.refusal ?? "") + text
            case .toolCalls(let calls): reply.toolCalls += calls
            case .finished(let reason, let usage):
                reply.finishReason = reason
                reply.usage = usage
            }
        }
        return reply
    }

    /// Sends the request until an answer is final, then reads the stream.
    private func attempts(_ body: [UInt8], yield: @Sendable (ChatStreamEvent) -> Void) async throws {
        var retry = 0
        while true {
            let response: HTTPClientResponse
            do {
                response = try await self.http.execute(self.httpRequest(body), deadline: .distantFuture, logger: self.logger)
            } catch let error as CancellationError {
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                // Not connected at all: worth the retries a 503 would get.
                guard let delay = self.retry.delay(status: 503, headers: [], errorCode: nil, retry: retry, jitter: self.jitter()) else {
                    throw ChatError.transport(Self.describe(error))
                }
                self.logger.notice("chat request failed, trying again", metadata: ["error": "\(Self.describe(error))", "retry_in": "\(delay)"])
                try await self.clock.sleep(for: delay)
                retry += 1
                continue
            }
            let status = Int(response.status.code)
            if status == 200 { return try await self.read(response) { yield($0) } }
            let headers = response.headers.map { ($0.name, $0.value) }
            let detail = try await Self.errorDetail(response)
            if let delay = self.retry.delay(status: status, headers: headers, errorCode: detail?.code, retry: retry, jitter: self.jitter()) {
                self.logger.notice(
                    "chat request refused, trying again", metadata: ["http.status": "\(status)", "error.code": "\(detail?.code ?? "")", "retry_in": "\(delay)"])
                try await self.clock.sleep(for: delay)
                retry += 1
                continue
            }
            throw Self.error(status: status, detail: detail)
        }
    }

    private func read(_ response: HTTPClientResponse, yield: (ChatStreamEvent) -> Void) async throws {
        var parser = ServerSentEventParser()
        var assembler = ChatStreamAssembler()
        do {
            for try await piece in response.body {
                for event in parser.feed(piece.readableBytesView) {
                    for output in try assembler.consume(event) { yield(output) }
                }
                if assembler.isDone { return }
            }
        } catch let error as ChatError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            // The connection broke mid-stream (a chunked body cut short reads as a parser error).
            self.logger.debug("chat stream broke", metadata: ["error": "\(Self.describe(error))"])
            throw ChatError.endedEarly
        }
        for output in try assembler.end() { yield(output) }
    }

    private func httpRequest(_ body: [UInt8]) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: self.endpoint.chatCompletionsURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let key = self.endpoint.apiKey {
            if let header = self.endpoint.keyHeader {
                request.headers.add(name: header, value: key)
            } else {
                request.headers.add(name: "Authorization", value: "Bearer \(key)")
            }
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    /// The error envelope of a refused request, when the body has one.
    static func errorDetail(_ response: HTTPClientResponse) async throws -> APIErrorBody.Detail? {
        let body = try? await response.body.collect(upTo: 64 << 10)
        guard let body else { return nil }
        return try? JSONDecoder().decode(APIErrorBody.self, from: Data(body.readableBytesView)).error
    }

    static func error(status: Int, detail: APIErrorBody.Detail?) -> ChatError {
        if status == 401 || status == 403 { return .authentication(status: status, code: detail?.code) }
        if detail?.code == "insufficient_quota" || detail?.type == "insufficient_quota" { return .insufficientQuota }
        return .status(status, type: detail?.type, code: detail?.code, message: detail?.message)
    }

    /// A transport error in a few words: its type and case, which never hold the request's data.
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? ChannelError { return "\(error)" }
        if let error = error as? IOError { return "\(error)" }
        return String(describing: type(of: error))
    }
}

/// Set once, read from any task.
private final class Flag: Sendable {
    private let value = Mutex(false)

    func set() { self.value.withLock { $0 = true } }
    var isSet: Bool { self.value.withLock { $0 } }
}

/// A reply read to its end.
public struct ChatReply: Sendable, Hashable {
    public var text = ""
    public var refusal: String?
    public var toolCalls: [ToolCall] = []
    public var finishReason: FinishReason?
    public var usage: TokenUsage?

    public init() {}
}
