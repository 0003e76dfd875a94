import ChatCompletions
import Foundation
import JSON
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An OpenAI-compatible chat-completions server on loopback, built from the client's own types
/// and SSE encoder run in reverse. It checks what the real service checks (Bearer key, model,
/// message roles, strict schemas) and answers each request with the next scripted reply.
///
/// Streams are written as HTTP chunks of odd sizes (cut mid-word, mid-JSON and mid-UTF-8), with
/// `: keepalive` comments and CRLF line ends mixed in.
public final class FakeChatServer: Sendable {
    /// A scripted answer to one request.
    public enum Reply: Sendable {
        /// The chunks as SSE events, then `data: [DONE]` when `done`; the connection stays open for the next request.
        case stream([ChatCompletionChunk], done: Bool = true)
        /// The chunks, then nothing more: the connection stays open, silent.
        case stall([ChatCompletionChunk])
        /// The chunks, then the connection is cut without `[DONE]`.
        case drop([ChatCompletionChunk])
        /// No answer at all: the connection is closed once the request is read, as a server
        /// does with a kept-alive connection it had just timed out.
        case hangUp
        /// An error status with the error envelope and extra headers.
        case status(Int, type: String, code: String?, message: String, headers: [(String, String)] = [])
        /// The reply, once the request has been read and this long has passed (a model thinking).
        indirect case after(TimeAmount, Reply)
    }

    /// A request as the server read it.
    public struct Request: Sendable {
        public var path: String
        public var headers: [(String, String)]
        public var body: JSONValue

        public func header(_ name: String) -> String? { self.headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    private struct State {
        var replies: [Reply] = []
        var defaultReply: Reply?
        /// The requests kept, a ring once full: the oldest is at `oldest`.
        var requests: [Request] = []
        var oldest = 0
        /// The last stream written, encoded: an endless load test repeats one reply.
        var lastStream: (chunks: [ChatCompletionChunk], done: Bool, bytes: [UInt8])?
        var refusedAfterAnswering = 0
    }

    public let apiKey: String?
    /// Bytes per written piece cycle through these sizes.
    public let pieceSizes: [Int]
    private let state = NIOLockedValueBox(State())
    private let loopback = LoopbackServer()

    /// When a request's body is read and checked (its path and key always are, first).
    public enum BodyCheck: Sendable {
        /// Before answering: a body the service would refuse gets its 400.
        case beforeAnswering
        /// Once the answer is written: the answer leaves at once, as from a service answering
        /// instantly, and a body the service would refuse is counted in `refusedAfterAnswering`.
        case afterAnswering
        /// Never: requests keep a null body.
        case never
    }

    /// How many of the last requests `requests` keeps (a load test's endless conversation keeps few).
    public let keptRequests: Int
    public let bodyCheck: BodyCheck

    public init(apiKey: String?, pieceSizes: [Int] = [1, 7, 3, 64, 2, 19, 5, 250], keptRequests: Int = .max, bodyCheck: BodyCheck = .beforeAnswering) {
        self.apiKey = apiKey
        self.pieceSizes = pieceSizes
        self.keptRequests = keptRequests
        self.bodyCheck = bodyCheck
    }

    /// Answered requests whose bodies the service would have refused (`.afterAnswering`).
    public var refusedAfterAnswering: Int { self.state.withLockedValue { $0.refusedAfterAnswering } }

    /// Starts listening on loopback (`port` 0: a free one), serving on `group`; returns the API
    /// root (`http://127.0.0.1:PORT/v1`, or `https://localhost:PORT/v1` with `tls`).
    public func start(port: Int = 0, tls: NIOSSLContext? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> String {
        let port = try await self.loopback.start(port: port, tls: tls, group: group) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(FakeChatHandler(server: self))
            }
        }
        return tls == nil ? "http://127.0.0.1:\(port)/v1" : "https://localhost:\(port)/v1"
    }

    public func stop() async { await self.loopback.stop() }

    /// TCP connections clients opened: a client that keeps its connection alive opens one.
    public var connectionsAccepted: Int { self.loopback.acceptedConnections }

    /// Cuts every connection open now, as a server ending idle keep-alive connections does.
    public func dropConnections() async { await self.loopback.dropConnections() }

    /// Writes a `408 Request Timeout` that nobody asked for on every open connection and leaves
    /// them open, as some servers do before they close an idle connection.
    public func sayTimedOutToIdleConnections() async throws {
        let bytes = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        for channel in self.loopback.openConnections {
            try await channel.eventLoop.submit {
                // Below the response encoder: the bytes go out as they are, outside any exchange.
                let context = try channel.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
                context.writeAndFlush(NIOAny(ByteBuffer(string: bytes)), promise: nil)
            }.get()
        }
    }

    /// The answer to every request once the queue is empty (a load test's endless conversation);
    /// without one, an empty queue answers 500.
    public func answerEveryRequest(_ reply: Reply) {
        self.state.withLockedValue { $0.defaultReply = reply }
    }

    /// Queues replies for the next requests, in order.
    public func enqueue(_ replies: Reply...) {
        self.state.withLockedValue { $0.replies += replies }
    }

    public var requests: [Request] { self.state.withLockedValue { Array($0.requests[$0.oldest...] + $0.requests[..<$0.oldest]) } }

    // MARK: Scripted chunks

    /// A reply's text as the service streams it: a role chunk, the text in pieces of `size`
    /// characters (cut mid-word), a finish chunk and a usage chunk.
    public static func chunks(text: String, size: Int = 4, finish: String = "stop", model: String = "fake-model") -> [ChatCompletionChunk] {
        var chunks = [self.chunk(model: model, delta: .init(role: "assistant", content: ""))]
        var rest = Substring(text)
        while !rest.isEmpty {
            chunks.append(self.chunk(model: model, delta: .init(content: String(rest.prefix(size)))))
            rest = rest.dropFirst(size)
        }
        return chunks + self.ending(finish: finish, model: model)
    }

    /// Tool calls spread over several deltas: the first names each call, later ones carry its
    /// arguments in pieces of `size` characters.
    public static func chunks(toolCalls: [ToolCall], size: Int = 5, model: String = "fake-model") -> [ChatCompletionChunk] {
        var chunks = [self.chunk(model: model, delta: .init(role: "assistant"))]
        for (index, call) in toolCalls.enumerated() {
            chunks.append(
                self.chunk(model: model, delta: .init(toolCalls: [.init(index: index, id: call.id, type: "function", function: .init(name: call.function.name, arguments: ""))])))
            var rest = Substring(call.function.arguments)
            while !rest.isEmpty {
                chunks.append(self.chunk(model: model, delta: .init(toolCalls: [.init(index: index, function: .init(arguments: String(rest.prefix(size))))])))
                rest = rest.dropFirst(size)
            }
        }
        return chunks + self.ending(finish: "tool_calls", model: model)
    }

    public static func chunk(model: String = "fake-model", delta: ChatCompletionChunk.Delta?, finish: String? = nil) -> ChatCompletionChunk {
        ChatCompletionChunk(id: "chatcmpl-fake", created: 1_732_500_000, model: model, choices: [.init(delta: delta, finishReason: finish)])
    }

    static func ending(finish: String, model: String) -> [ChatCompletionChunk] {
        [
            self.chunk(model: model, delta: .init(), finish: finish),
            ChatCompletionChunk(id: "chatcmpl-fake", created: 1_732_500_000, model: model, choices: [], usage: TokenUsage(promptTokens: 42, completionTokens: 17)),
        ]
    }

    // MARK: Serving

    /// What to answer: the envelope of a refused request, or the next scripted reply.
    func answer(path: String, headers: HTTPHeaders, body: ByteBuffer) -> Reply {
        let json = self.bodyCheck == .beforeAnswering ? JSONReader.read(body.readableBytesView) ?? .null : .null
        if self.bodyCheck != .afterAnswering { self.keep(Request(path: path, headers: headers.map { ($0.name, $0.value) }, body: json)) }
        if let refusal = self.refusal(path: path, headers: headers) { return refusal }
        if self.bodyCheck == .beforeAnswering, let problem = Self.problem(json) { return .status(400, type: "invalid_request_error", code: nil, message: problem) }
        return self.state.withLockedValue { state -> Reply in
            if !state.replies.isEmpty { return state.replies.removeFirst() }
            return state.defaultReply ?? .status(500, type: "server_error", code: nil, message: "no reply scripted")
        }
    }

    /// With `.afterAnswering`, once the answer is written: reads, keeps and checks the request.
    func answered(path: String, headers: HTTPHeaders, body: ByteBuffer) {
        guard self.bodyCheck == .afterAnswering else { return }
        let json = JSONReader.read(body.readableBytesView) ?? .null
        self.keep(Request(path: path, headers: headers.map { ($0.name, $0.value) }, body: json))
        if self.refusal(path: path, headers: headers) == nil, Self.problem(json) != nil { self.state.withLockedValue { $0.refusedAfterAnswering += 1 } }
    }

    private func keep(_ request: Request) {
        self.state.withLockedValue { state in
            guard self.keptRequests > 0 else { return }
            guard state.requests.count == self.keptRequests else { return state.requests.append(request) }
            state.requests[state.oldest] = request
            state.oldest = (state.oldest + 1) % self.keptRequests
        }
    }

    /// The service's answer to a request for another path or without the key.
    private func refusal(path: String, headers: HTTPHeaders) -> Reply? {
        guard path.hasPrefix("/v1/chat/completions") else {
            return .status(404, type: "invalid_request_error", code: "unknown_url", message: "Unknown request URL: POST \(path).")
        }
        if let key = self.apiKey, headers.first(name: "authorization") != "Bearer \(key)" {
            let given = headers.first(name: "authorization")?.replacingOccurrences(of: "Bearer ", with: "") ?? ""
            return .status(
                401, type: "invalid_request_error", code: "invalid_api_key",
                message: "Incorrect API key provided: \(given.prefix(5))***\(given.suffix(4)). You can find your API key at https://platform.openai.com/account/api-keys.")
        }
        return nil
    }

    /// What the service would refuse in a request body.
    static func problem(_ body: JSONValue) -> String? {
        guard case .string(let model)? = body["model"], !model.isEmpty else { return "you must provide a model parameter" }
        guard case .array(let messages)? = body["messages"], !messages.isEmpty else { return "'messages' must be a non-empty array" }
        for (index, message) in messages.enumerated() {
            guard let role = message["role"]?.string, ["system", "user", "assistant", "developer", "tool"].contains(role) else {
                return "Invalid value for 'messages[\(index)].role'"
            }
            if role == "tool", message["tool_call_id"]?.string == nil { return "messages[\(index)]: a tool message needs 'tool_call_id'" }
        }
        if body["max_tokens"] != nil, body["max_completion_tokens"] != nil {
            return "max_tokens and max_completion_tokens cannot both be set"
        }
        if case .array(let tools)? = body["tools"] {
            for (index, tool) in tools.enumerated() {
                guard let function = tool["function"], function["name"]?.string != nil, let parameters = function["parameters"] else {
                    return "tools[\(index)]: a function needs a name and parameters"
                }
                if case .bool(true)? = function["strict"], let problem = Self.strictProblem(parameters, path: "tools[\(index)].parameters") { return problem }
            }
        }
        if case .object(let format)? = body["response_format"], format["type"]?.string == "json_schema" {
            guard let schema = format["json_schema"], schema["name"]?.string != nil, let root = schema["schema"] else {
                return "response_format.json_schema needs a name and a schema"
            }
            if case .bool(true)? = schema["strict"], let problem = Self.strictProblem(root, path: "schema") { return problem }
        }
        return nil
    }

    /// Strict mode: every object lists all its properties as required and admits no others.
    public static func strictProblem(_ schema: JSONValue, path: String) -> String? {
        if case .object(let properties)? = schema["properties"] {
            guard case .bool(false)? = schema["additionalProperties"] else { return "\(path): 'additionalProperties' is required to be false" }
            var required: Set<String> = []
            if case .array(let names)? = schema["required"] { required = Set(names.compactMap(\.string)) }
            for name in properties.keys.sorted() {
                guard required.contains(name) else { return "\(path): 'required' must include every property (missing '\(name)')" }
                if let problem = self.strictProblem(properties[name]!, path: "\(path).\(name)") { return problem }
            }
        }
        if let items = schema["items"], let problem = self.strictProblem(items, path: "\(path)[]") { return problem }
        return nil
    }

    /// The SSE bytes of `chunks`: every third event with CRLF line ends, comments between events.
    func streamBytes(_ chunks: [ChatCompletionChunk], done: Bool) -> [UInt8] {
        if let last = self.state.withLockedValue({ $0.lastStream }), last.chunks == chunks, last.done == done { return last.bytes }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var text = ": keepalive\n\n"
        for (index, chunk) in chunks.enumerated() {
            let json = String(decoding: (try? encoder.encode(chunk)) ?? Data(), as: UTF8.self)
            let event = ServerSentEvent(data: json).encoded
            text += index % 3 == 2 ? event.replacingOccurrences(of: "\n", with: "\r\n") : event
            if index % 4 == 1 { text += ": keepalive\n\n" }
        }
        if done { text += ServerSentEvent(data: "[DONE]").encoded }
        let bytes = Array(text.utf8)
        self.state.withLockedValue { $0.lastStream = (chunks, done, bytes) }
        return bytes
    }

}

final class FakeChatHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: FakeChatServer
    private var request = RequestCollector()

    init(server: FakeChatServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let (head, body) = self.request.add(self.unwrapInboundIn(data)) else { return }
        self.respond(context: context, reply: self.server.answer(path: head.uri, headers: head.headers, body: body))
        self.server.answered(path: head.uri, headers: head.headers, body: body)
    }

    private func respond(context: ChannelHandlerContext, reply: FakeChatServer.Reply) {
        let channel = context.channel
        switch reply {
        case .after(let pause, let reply):
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: pause) { self.respond(context: bound.value, reply: reply) }
        case .status(let status, let type, let code, let message, let extra):
            let envelope = APIErrorBody(error: .init(message: message, type: type, code: code))
            let body = (try? JSONEncoder().encode(envelope)) ?? Data()
            var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "\(body.count)"), ("x-request-id", "req_fake")])
            for (name, value) in extra { headers.add(name: name, value: value) }
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        case .stream(let chunks, let done):
            // The connection stays open for the next request, as the service keeps it (chunked bodies end on their own).
            self.writeStream(context: context, bytes: self.server.streamBytes(chunks, done: done)) {
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        case .stall(let chunks):
            self.writeStream(context: context, bytes: self.server.streamBytes(chunks, done: false)) { context.flush() }
        case .hangUp:
            channel.close(promise: nil)
        case .drop(let chunks):
            self.writeStream(context: context, bytes: self.server.streamBytes(chunks, done: false)) {
                context.flush()
                channel.close(promise: nil)
            }
        }
    }

    /// The head, then the bytes in pieces of the server's sizes, each flushed on its own (the
    /// head goes with the first piece, the end with the last).
    private func writeStream(context: ChannelHandlerContext, bytes: [UInt8], then: () -> Void) {
        let headers = HTTPHeaders([("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("x-request-id", "req_fake")])
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        var offset = 0
        var turn = 0
        while offset < bytes.count {
            let size = min(self.server.pieceSizes[turn % self.server.pieceSizes.count], bytes.count - offset)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes[offset..<(offset + size)])))), promise: nil)
            offset += size
            turn += 1
            if offset < bytes.count { context.flush() }
        }
        then()
    }
}
