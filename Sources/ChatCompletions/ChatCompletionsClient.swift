import Foundation
import Logging
import NIOCore
import NIOHTTP1
import StreamingHTTP

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
/// The watchdogs run on an injected clock; the HTTP transport is `StreamingHTTPClient`.
public struct ChatCompletionsClient: Sendable {
    public let endpoint: ChatEndpoint
    public var timeouts: ChatTimeouts
    public var retry: ChatRetryPolicy
    let http: StreamingHTTPClient
    /// The request line and headers, built once.
    let target: Result<HTTPTarget, HTTPTransportError>
    let clock: any Clock<Duration>
    let logger: Logger
    /// Random numbers in 0..<1 for the backoff's jitter.
    let jitter: @Sendable () -> Double

    public init(
        endpoint: ChatEndpoint, timeouts: ChatTimeouts = ChatTimeouts(), retry: ChatRetryPolicy = ChatRetryPolicy(), http: StreamingHTTPClient = .shared,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger, jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.retry = retry
        self.http = http
        self.target = Result { () throws(HTTPTransportError) in try HTTPTarget(post: endpoint.chatCompletionsURL, headers: Self.headers(endpoint)) }
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
        let call = self.call(request) { continuation.yield($0) }
        continuation.onTermination = { termination in
            if case .cancelled = termination { call.cancel() }
        }
        call.start { result in
            if case .failure(let error) = result { continuation.finish(throwing: error) } else { continuation.finish() }
        }
        return stream
    }

    /// A request ready to start, whose events go to `receive` on the event loop reading the
    /// response. Nothing is sent before `start`; nothing waits on a task of its own.
    public func call(_ request: ChatRequest, receive: @escaping @Sendable (ChatStreamEvent) -> Void) -> ChatCall {
        ChatCall(client: self, body: ByteBuffer(bytes: request.jsonBytes), receive: receive)
    }

    /// The same, for a request written once but for its last `messages` (a dialogue's turn).
    /// `firstToken` hears, just before the first token's event, the model's time to it: from the
    /// request's last byte out (its first attempt's, when it was retried) to the read that
    /// brought the token.
    public func call(
        _ body: ChatRequestBody, appending messages: [ChatMessage], firstToken: (@Sendable (Duration) -> Void)? = nil,
        receive: @escaping @Sendable (ChatStreamEvent) -> Void
    ) -> ChatCall {
        ChatCall(client: self, body: ByteBuffer(bytes: body.bytes(appending: messages)), firstToken: firstToken, receive: receive)
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

    private static func headers(_ endpoint: ChatEndpoint) -> [(String, String)] {
        var headers = [("Content-Type", "application/json"), ("Accept", "text/event-stream")]
        if let key = endpoint.apiKey { headers.append(endpoint.keyHeader.map { ($0, key) } ?? ("Authorization", "Bearer \(key)")) }
        return headers
    }

    static func error(status: Int, detail: APIErrorBody.Detail?) -> ChatError {
        if status == 401 || status == 403 { return .authentication(status: status, code: detail?.code) }
        if detail?.code == "insufficient_quota" || detail?.type == "insufficient_quota" { return .insufficientQuota }
        return .status(status, type: detail?.type, code: detail?.code, message: detail?.message)
    }
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
