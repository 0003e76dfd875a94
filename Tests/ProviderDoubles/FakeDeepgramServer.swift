import Deepgram
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Deepgram on loopback, for tests: the `/v1/listen` WebSocket, built from the client's own
/// message types run in reverse. It checks the credentials before the upgrade (401 with
/// `dg-error` otherwise), requires `sample_rate` with `encoding`, and "hears" a scripted
/// utterance for every `bytesPerUtterance` of audio: `SpeechStarted` and an interim result
/// halfway, then the final result with `speech_final`, then `UtteranceEnd`, each only when the
/// query asked for it.
///
/// Scripted faults: the first socket dropped after some audio, and the idle close (`NET-0001`,
/// after `idleTimeout` without a frame). An empty binary frame is closed with `DATA-0000`.
public final class FakeDeepgramServer: Sendable {
    /// One listen socket as the server saw it.
    public struct Listen: Sendable {
        public var query: [String: [String]]
        public var authorization: String?
        public var audioBytes = 0
        /// Text messages by their `type`, in order.
        public var controls: [String] = []
        /// The first bytes of audio received (up to 64 KB), to check a replay.
        public var audio: [UInt8] = []
    }

    private struct State {
        var utterances: [String] = []
        var listens: [Listen] = []
        var dropAfterBytes: Int?
        var channels: [any Channel] = []
        /// Access tokens the server issued and accepts as `Bearer`.
        var tokens: Set<String> = []
    }

    /// Credentials the server accepts: `Token <key>`, and `Bearer <token>` for issued tokens.
    public let apiKey: String
    public let bytesPerUtterance: Int
    public let idleTimeout: TimeAmount
    private let state = NIOLockedValueBox(State())
    private let server = NIOLockedValueBox<(any Channel)?>(nil)

    public init(apiKey: String, bytesPerUtterance: Int = 9600, idleTimeout: TimeAmount = .seconds(10)) {
        self.apiKey = apiKey
        self.bytesPerUtterance = bytesPerUtterance
        self.idleTimeout = idleTimeout
    }

    /// Starts listening on a free loopback port; returns the API root (`http://127.0.0.1:PORT`).
    public func start() async throws -> URL {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: 1 << 20,
                    shouldUpgrade: { channel, head in
                        channel.eventLoop.makeSucceededFuture(self.refusal(head) == nil ? HTTPHeaders() : nil)
                    },
                    upgradePipelineHandler: { channel, head in
                        let index = self.opened(head)
                        return channel.pipeline.addHandler(FakeListenHandler(server: self, index: index, idleTimeout: self.idleTimeout))
                    })
                // The HTTP handler answers what is not upgraded; once a socket is upgraded it leaves.
                let upgraded: @Sendable (ChannelHandlerContext) -> Void = { context in
                    context.pipeline.removeHandler(name: "deepgram-http", promise: nil)
                }
                return channel.pipeline.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: upgraded)).flatMap {
                    channel.pipeline.addHandler(FakeDeepgramHTTPHandler(server: self), name: "deepgram-http")
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        self.server.withLockedValue { $0 = channel }
        return URL(string: "http://127.0.0.1:\(channel.localAddress!.port!)")!
    }

    public func stop() async {
        let channels = self.state.withLockedValue { state in
            defer { state.channels.removeAll() }
            return state.channels
        }
        for channel in channels { try? await channel.close() }
        try? await self.server.withLockedValue { $0 }?.close()
    }

    /// Utterances to hear, in order, one per `bytesPerUtterance` of audio.
    public func script(_ utterances: String...) {
        self.state.withLockedValue { $0.utterances += utterances }
    }

    /// The next socket's TCP connection is cut (no close frame) once it has received this much audio.
    public func dropNextSocket(afterBytes bytes: Int) {
        self.state.withLockedValue { $0.dropAfterBytes = bytes }
    }

    public var listens: [Listen] { self.state.withLockedValue { $0.listens } }

    // MARK: Serving

    struct Refusal {
        var status: HTTPResponseStatus
        var code: String
        var message: String
    }

    /// Why an upgrade request is refused, nil when it is accepted.
    func refusal(_ head: HTTPRequestHead) -> Refusal? {
        let authorization = head.headers.first(name: "authorization")
        guard authorization == "Token \(self.apiKey)" || authorization.map(self.acceptsBearer) == true else {
            return Refusal(status: .unauthorized, code: "INVALID_AUTH", message: "Invalid credentials.")
        }
        let query = Self.query(head.uri)
        guard head.uri.hasPrefix("/v1/listen") else { return Refusal(status: .notFound, code: "NOT_FOUND", message: "Not found.") }
        if query["encoding"] != nil, query["sample_rate"] == nil {
            return Refusal(status: .badRequest, code: "INVALID_QUERY_PARAMETER", message: "sample_rate is required when encoding is set.")
        }
        return nil
    }

    func acceptsBearer(_ header: String) -> Bool {
        guard header.hasPrefix("Bearer ") else { return false }
        return self.state.withLockedValue { $0.tokens.contains(String(header.dropFirst("Bearer ".count))) }
    }

    static func query(_ uri: String) -> [String: [String]] {
        var query: [String: [String]] = [:]
        for item in URLComponents(string: uri)?.queryItems ?? [] { query[item.name, default: []].append(item.value ?? "") }
        return query
    }

    func opened(_ head: HTTPRequestHead) -> Int {
        self.state.withLockedValue { state in
            state.listens.append(Listen(query: Self.query(head.uri), authorization: head.headers.first(name: "authorization")))
            return state.listens.count - 1
        }
    }

    func track(_ channel: any Channel) {
        self.state.withLockedValue { $0.channels.append(channel) }
    }

    /// Records audio; returns whether the socket is to be cut now.
    func received(audio bytes: ByteBufferView, on index: Int) -> Bool {
        self.state.withLockedValue { state in
            state.listens[index].audioBytes += bytes.count
            if state.listens[index].audio.count < 65_536 { state.listens[index].audio += bytes.prefix(65_536 - state.listens[index].audio.count) }
            if let limit = state.dropAfterBytes, state.listens[index].audioBytes >= limit {
                state.dropAfterBytes = nil
                return true
            }
            return false
        }
    }

    func received(control: String, on index: Int) {
        self.state.withLockedValue { $0.listens[index].controls.append(control) }
    }

    func requeue(_ utterance: String) {
        self.state.withLockedValue { $0.utterances.insert(utterance, at: 0) }
    }

    func nextUtterance() -> String? {
        self.state.withLockedValue { state in state.utterances.isEmpty ? nil : state.utterances.removeFirst() }
    }
}

/// Answers what is not a WebSocket upgrade: refused upgrades get Deepgram's error.
final class FakeDeepgramHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: FakeDeepgramServer
    private var head: HTTPRequestHead?

    init(server: FakeDeepgramServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head = self.head else { return }
            let refusal = self.server.refusal(head) ?? .init(status: .badRequest, code: "BAD_REQUEST", message: "Expected a WebSocket upgrade.")
            let body = #"{"err_code":"\#(refusal.code)","err_msg":"\#(refusal.message)","request_id":"00000000-0000-4000-8000-000000000000"}"#
            let headers = HTTPHeaders([
                ("Content-Type", "application/json"), ("Content-Length", "\(body.utf8.count)"), ("dg-error", refusal.code),
                ("dg-request-id", "00000000-0000-4000-8000-000000000000"), ("Connection", "close"),
            ])
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: refusal.status, headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// One listen socket: hears the script as audio arrives, answers the control messages.
final class FakeListenHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let server: FakeDeepgramServer
    private let index: Int
    private let idleTimeout: TimeAmount
    private var idle: Scheduled<Void>?
    private var query: [String: [String]] = [:]
    /// Audio since the current utterance began, and the utterance being heard.
    private var heardBytes = 0
    private var current: String?
    private var seconds = 0.0
    private var closed = false

    init(server: FakeDeepgramServer, index: Int, idleTimeout: TimeAmount) {
        self.server = server
        self.index = index
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.server.track(context.channel)
        self.query = self.server.listens[self.index].query
        self.armIdle(context: context)
    }

    private func flag(_ name: String) -> Bool { self.query[name]?.first == "true" }

    private func armIdle(context: ChannelHandlerContext) {
        self.idle?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.idle = context.eventLoop.scheduleTask(in: self.idleTimeout) {
            let (handler, context) = loopBound.value
            handler.close(context: context, code: .unexpectedServerError, reason: "NET-0001")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard !self.closed else { return }
        self.armIdle(context: context)
        switch frame.opcode {
        case .binary:
            let audio = frame.unmaskedData
            guard audio.readableBytes > 0 else { return self.close(context: context, code: .protocolError, reason: "DATA-0000") }
            if self.server.received(audio: audio.readableBytesView, on: self.index) {
                // Cut without a close frame, as a network failure would. The utterance half heard
                // was never settled: the next socket hears it again.
                self.closed = true
                if let current = self.current { self.server.requeue(current) }
                context.close(promise: nil)
                return
            }
            self.hear(bytes: audio.readableBytes, context: context)
        case .text:
            let text = String(buffer: frame.unmaskedData)
            guard let control = ListenControl(json: text) else { return self.close(context: context, code: .protocolError, reason: "DATA-0000") }
            self.server.received(control: control.rawValue, on: self.index)
            switch control {
            case .keepAlive:
                break
            case .finalize:
                let text = self.current ?? ""
                self.send(.results(ListenResults(transcript: self.heardBytes > 0 ? text : "", start: self.seconds, duration: 0.5, isFinal: true, speechFinal: false, fromFinalize: true)), context: context)
                self.current = nil
                self.heardBytes = 0
            case .closeStream:
                self.send(.metadata(requestID: "00000000-0000-4000-8000-000000000001", duration: self.seconds), context: context)
                self.close(context: context, code: .normalClosure, reason: "")
            }
        case .connectionClose:
            self.close(context: context, code: .normalClosure, reason: "")
        case .ping:
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        default:
            break
        }
    }

    /// Audio in: halfway through an utterance, speech starts and an interim result comes; at its end, the final ones.
    private func hear(bytes: Int, context: ChannelHandlerContext) {
        let perUtterance = self.server.bytesPerUtterance
        let before = self.heardBytes
        self.heardBytes += bytes
        self.seconds += Double(bytes) / 16_000
        if before == 0 { self.current = self.server.nextUtterance() }
        guard let text = self.current else {
            self.heardBytes = 0
            return
        }
        if before < perUtterance / 2, self.heardBytes >= perUtterance / 2 {
            if self.flag("vad_events") { self.send(.speechStarted(timestamp: self.seconds - 0.3), context: context) }
            if self.flag("interim_results") {
                let words = text.split(separator: " ")
                self.send(.results(ListenResults(transcript: words.prefix(max(1, words.count / 2)).joined(separator: " "), start: self.seconds - 0.3, duration: 0.3, isFinal: false, speechFinal: false)), context: context)
            }
        }
        if self.heardBytes >= perUtterance {
            let endpointing = self.query["endpointing"]?.first != "false"
            self.send(.results(ListenResults(transcript: text, start: self.seconds - 0.6, duration: 0.6, isFinal: true, speechFinal: endpointing)), context: context)
            if self.query["utterance_end_ms"] != nil, self.flag("interim_results") {
                self.send(.utteranceEnd(lastWordEnd: self.seconds), context: context)
            }
            self.current = nil
            self.heardBytes = 0
        }
    }

    private func send(_ message: ListenMessage, context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: message.json))), promise: nil)
    }

    private func close(context: ChannelHandlerContext, code: WebSocketErrorCode, reason: String) {
        guard !self.closed else { return }
        self.closed = true
        self.idle?.cancel()
        var data = ByteBuffer()
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.idle?.cancel()
        context.fireChannelInactive()
    }
}
