import Deepgram
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOWebSocket

/// Deepgram on loopback, for tests: the `/v1/listen` WebSocket, built from the client's own
/// message types run in reverse. It checks the credentials before the upgrade (401 with
/// `dg-error` otherwise), requires `sample_rate` with `encoding`, and "hears" the next scripted
/// utterance in each stretch of speech (a frame with a sample above `speechLevel` is speech):
/// `SpeechStarted` and an interim result once 0.3 s of speech came, then, after the query's
/// `endpointing` of silence, the final result with `speech_final` and `UtteranceEnd`, each only
/// when the query asked for it.
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
        var defaultUtterance: String?
        var listens: [Listen] = []
        var dropAfterBytes: Int?
        /// Access tokens the server issued and accepts as `Bearer`, with their expiry.
        var tokens: [String: NIODeadline] = [:]
        var speaks: [Speak] = []
        var restFailures: [(HTTPResponseStatus, String)] = []
        var restRequests: [[String: [String]]] = []
        var speechStalls = false
        var speechPause = TimeAmount.zero
        var echoesAuthorization = false
    }

    /// One speak socket as the server saw it: the text of each Speak, and each control by type.
    public struct Speak: Sendable {
        public var query: [String: [String]]
        public var messages: [String] = []
    }

    /// Credentials the server accepts: `Token <key>`, and `Bearer <token>` for issued tokens.
    public let apiKey: String
    public let speechLevel: Int16
    public let idleTimeout: TimeAmount
    private let state = NIOLockedValueBox(State())
    private let loopback = LoopbackServer()

    public init(apiKey: String, speechLevel: Int16 = 500, idleTimeout: TimeAmount = .seconds(10)) {
        self.apiKey = apiKey
        self.speechLevel = speechLevel
        self.idleTimeout = idleTimeout
    }

    /// Starts listening on loopback (`port` 0: a free one); returns the API root
    /// (`http://127.0.0.1:PORT`, or `https://localhost:PORT` with `tls`: sockets are then `wss`).
    public func start(port: Int = 0, tls: NIOSSLContext? = nil) async throws -> URL {
        let port = try await self.loopback.start(port: port, tls: tls) { channel in
            let upgrader = NIOWebSocketServerUpgrader(
                maxFrameSize: 1 << 20,
                shouldUpgrade: { channel, head in
                    channel.eventLoop.makeSucceededFuture(self.refusal(head) == nil ? HTTPHeaders() : nil)
                },
                upgradePipelineHandler: { channel, head in
                    if head.uri.hasPrefix("/v1/speak") {
                        return channel.pipeline.addHandler(FakeSpeakHandler(server: self, index: self.openedSpeak(head)))
                    }
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
        return URL(string: tls == nil ? "http://127.0.0.1:\(port)" : "https://localhost:\(port)")!
    }

    public func stop() async { await self.loopback.stop() }

    /// Cuts every open socket without a close frame, as a network failure would.
    public func dropConnections() async { await self.loopback.dropConnections() }

    /// Utterances to hear, in order, one per stretch of speech.
    public func script(_ utterances: String...) {
        self.state.withLockedValue { $0.utterances += utterances }
    }

    /// The next socket's TCP connection is cut (no close frame) once it has received this much audio.
    public func dropNextSocket(afterBytes bytes: Int) {
        self.state.withLockedValue { $0.dropAfterBytes = bytes }
    }

    public var listens: [Listen] { self.state.withLockedValue { $0.listens } }

    /// From now on a refused request's error code and message quote the Authorization header
    /// it came with, as a careless upstream or proxy does.
    public func echoAuthorizationInRefusals() {
        self.state.withLockedValue { $0.echoesAuthorization = true }
    }

    // MARK: Serving

    struct Refusal: Error {
        var status: HTTPResponseStatus
        var code: String
        var message: String
    }

    /// Why an upgrade request is refused, nil when it is accepted.
    func refusal(_ head: HTTPRequestHead) -> Refusal? {
        guard self.authorizes(head.headers.first(name: "authorization")) else {
            if self.state.withLockedValue({ $0.echoesAuthorization }) {
                let sent = head.headers.first(name: "authorization") ?? ""
                return Refusal(status: .unauthorized, code: "INVALID_AUTH(\(sent))", message: "Invalid credentials: \(sent) is not a key")
            }
            return Refusal(status: .unauthorized, code: "INVALID_AUTH", message: "Invalid credentials.")
        }
        let query = Self.query(head.uri)
        guard head.uri.hasPrefix("/v1/listen") || head.uri.hasPrefix("/v1/speak") else {
            return Refusal(status: .notFound, code: "NOT_FOUND", message: "Not found.")
        }
        if query["encoding"] != nil, query["sample_rate"] == nil {
            return Refusal(status: .badRequest, code: "INVALID_QUERY_PARAMETER", message: "sample_rate is required when encoding is set.")
        }
        return nil
    }

    /// The key as `Token`, or a token this server issued and that has not expired as `Bearer`.
    func authorizes(_ header: String?) -> Bool {
        guard let header else { return false }
        return header == "Token \(self.apiKey)" || self.acceptsBearer(header)
    }

    func acceptsBearer(_ header: String) -> Bool {
        guard header.hasPrefix("Bearer ") else { return false }
        let token = String(header.dropFirst("Bearer ".count))
        return self.state.withLockedValue { $0.tokens[token].map { $0 > .now() } ?? false }
    }

    /// A JWT-shaped token that the listen and speak sockets accept until it expires.
    func issueToken(seconds: Int) -> String {
        let token = "eyJhbGciOiJIUzI1NiJ9.\(UUID().uuidString.lowercased()).fake-signature"
        self.state.withLockedValue { $0.tokens[token] = .now() + .seconds(Int64(seconds)) }
        return token
    }

    /// The next REST speak requests fail with these statuses and codes, in order.
    public func failNextSpeak(_ status: Int, code: String) {
        self.state.withLockedValue { $0.restFailures.append((HTTPResponseStatus(statusCode: status), code)) }
    }

    /// From now on (until called with false) a speak socket's audio stalls after its first
    /// 100 ms: the rest, and `Flushed`, never come (a `Clear` is answered as ever).
    public func stallSpeech(_ stalls: Bool = true) {
        self.state.withLockedValue { $0.speechStalls = stalls }
    }

    var speechStalls: Bool { self.state.withLockedValue { $0.speechStalls } }

    /// From now on a speak socket's audio for a `Flush` starts this long after it (a voice
    /// being made); `.zero` answers at once again.
    public func pauseBeforeSpeech(_ pause: TimeAmount) {
        self.state.withLockedValue { $0.speechPause = pause }
    }

    var speechPause: TimeAmount { self.state.withLockedValue { $0.speechPause } }

    public var speaks: [Speak] { self.state.withLockedValue { $0.speaks } }
    public var restSpeakRequests: [[String: [String]]] { self.state.withLockedValue { $0.restRequests } }

    /// The audio the server makes for `text`: 10 ms per character, samples that differ, so a
    /// client's framing can be checked sample by sample.
    public static func speech(for text: String) -> [Int16] {
        let characters = text.count
        return (0..<(characters * 80)).map { Int16(truncatingIfNeeded: ($0 &* 37 &+ characters) % 4000 - 2000) }
    }

    /// Little-endian, as linear16 goes on the wire.
    static func bytes(_ samples: [Int16]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(samples.count * 2)
        for sample in samples {
            bytes.append(UInt8(truncatingIfNeeded: sample))
            bytes.append(UInt8(truncatingIfNeeded: sample >> 8))
        }
        return bytes
    }

    func openedSpeak(_ head: HTTPRequestHead) -> Int {
        self.state.withLockedValue { state in
            state.speaks.append(Speak(query: Self.query(head.uri)))
            return state.speaks.count - 1
        }
    }

    func received(speakMessage: String, on index: Int) {
        self.state.withLockedValue { $0.speaks[index].messages.append(speakMessage) }
    }

    /// A REST speak: the failure queued for it, or the audio.
    func restSpeak(_ head: HTTPRequestHead) -> Result<[UInt8], Refusal> {
        let query = Self.query(head.uri)
        return self.state.withLockedValue { state in
            state.restRequests.append(query)
            if !state.restFailures.isEmpty {
                let (status, code) = state.restFailures.removeFirst()
                return .failure(Refusal(status: status, code: code, message: "Injected failure."))
            }
            return .success([])
        }
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
        self.state.withLockedValue { state in state.utterances.isEmpty ? state.defaultUtterance : state.utterances.removeFirst() }
    }

    /// What every stretch of speech is heard as once the script is used up (a load test's caller).
    public func hearEveryStretch(as utterance: String) {
        self.state.withLockedValue { $0.defaultUtterance = utterance }
    }
}

/// Answers what is not a WebSocket upgrade: refused upgrades get Deepgram's error.
final class FakeDeepgramHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: FakeDeepgramServer
    private var request = RequestCollector()

    init(server: FakeDeepgramServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let (head, body) = self.request.add(self.unwrapInboundIn(data)) else { return }
        let authorized = self.server.authorizes(head.headers.first(name: "authorization"))
        switch (head.method, head.uri.split(separator: "?").first ?? "") {
        case (.POST, "/v1/auth/grant") where head.headers.first(name: "authorization") == "Token \(self.server.apiKey)":
            struct Request: Decodable { var ttl_seconds: Int? }
            let ttl = (try? JSONDecoder().decode(Request.self, from: Data(body.readableBytesView)))?.ttl_seconds ?? 30
            guard (1...3600).contains(ttl) else {
                return self.refuse(context, .init(status: .badRequest, code: "INVALID_QUERY_PARAMETER", message: "ttl_seconds must be 1 to 3600."))
            }
            let json = #"{"access_token":"\#(self.server.issueToken(seconds: ttl))","expires_in":\#(ttl)}"#
            self.respond(context, status: .ok, contentType: "application/json", pieces: [Array(json.utf8)])
        case (.POST, "/v1/speak") where authorized:
            struct Request: Decodable { var text: String }
            guard let text = try? JSONDecoder().decode(Request.self, from: Data(body.readableBytesView)).text, !text.isEmpty else {
                return self.refuse(context, .init(status: .badRequest, code: "INVALID_BODY", message: "The body needs a text."))
            }
            switch self.server.restSpeak(head) {
            case .failure(let refusal):
                self.refuse(context, refusal)
            case .success:
                var audio = FakeDeepgramServer.bytes(FakeDeepgramServer.speech(for: text))
                if FakeDeepgramServer.query(head.uri)["container"] != ["none"] { audio = FakeDeepgramServer.wavHeader(bytes: audio.count) + audio }
                self.respond(context, status: .ok, contentType: "audio/l16", pieces: FakeDeepgramServer.oddPieces(audio))
            }
        default:
            self.refuse(context, self.server.refusal(head) ?? .init(status: .badRequest, code: "BAD_REQUEST", message: "Expected a WebSocket upgrade."))
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ refusal: FakeDeepgramServer.Refusal) {
        let body = #"{"err_code":"\#(refusal.code)","err_msg":"\#(refusal.message)","request_id":"00000000-0000-4000-8000-000000000000"}"#
        self.respond(context, status: refusal.status, contentType: "application/json", pieces: [Array(body.utf8)], extra: [("dg-error", refusal.code)])
    }

    /// The response head, then the body in the given pieces (chunked), then the end; the connection closes.
    private func respond(
        _ context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String, pieces: [[UInt8]], extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("dg-request-id", "00000000-0000-4000-8000-000000000000"), ("Connection", "close")])
        for (name, value) in extra { headers.add(name: name, value: value) }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        for piece in pieces { context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: piece)))), promise: nil) }
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

extension FakeDeepgramServer {
    /// Bytes cut in pieces of odd sizes, a sample split between pieces now and then.
    static func oddPieces(_ bytes: [UInt8]) -> [[UInt8]] {
        let sizes = [1, 333, 7, 1000, 2, 481]
        var pieces: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            let size = min(sizes[pieces.count % sizes.count], bytes.count - offset)
            pieces.append(Array(bytes[offset..<(offset + size)]))
            offset += size
        }
        return pieces
    }

    /// A 44-byte RIFF/WAVE header for 8 kHz mono 16-bit audio of `bytes` bytes.
    static func wavHeader(bytes: Int) -> [UInt8] {
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8((value >> ($0 * 8)) & 0xFF) } }
        func le16(_ value: Int) -> [UInt8] { (0..<2).map { UInt8((value >> ($0 * 8)) & 0xFF) } }
        return Array("RIFF".utf8) + le32(36 + bytes) + Array("WAVEfmt ".utf8) + le32(16) + le16(1) + le16(1) + le32(8000) + le32(16_000) + le16(2)
            + le16(16) + Array("data".utf8) + le32(bytes)
    }
}

/// One speak socket: Metadata first, then audio for each Flush, Cleared for each Clear.
final class FakeSpeakHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let server: FakeDeepgramServer
    private let index: Int
    private var text = ""
    private var flushes = 0
    private var clears = 0

    init(server: FakeDeepgramServer, index: Int) {
        self.server = server
        self.index = index
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.sendText(SpeakReply.metadata(requestID: "00000000-0000-4000-8000-000000000002").json, context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard let control = SpeakControl(json: String(buffer: frame.unmaskedData)) else { return }
            switch control {
            case .speak(let text):
                self.server.received(speakMessage: "Speak:\(text)", on: self.index)
                self.text += text
            case .flush:
                self.server.received(speakMessage: "Flush", on: self.index)
                let bytes = FakeDeepgramServer.bytes(FakeDeepgramServer.speech(for: self.text))
                self.text = ""
                if self.server.speechStalls {
                    let first = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: bytes.prefix(1_600)))
                    return context.writeAndFlush(self.wrapOutboundOut(first), promise: nil)
                }
                let flushed = SpeakReply.flushed(sequence: self.flushes).json
                self.flushes += 1
                let speak: @Sendable (ChannelHandlerContext) -> Void = { context in
                    for piece in FakeDeepgramServer.oddPieces(bytes) {
                        context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: piece))), promise: nil)
                    }
                    self.sendText(flushed, context: context)
                }
                let pause = self.server.speechPause
                guard pause > .zero else { return speak(context) }
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: pause) { speak(bound.value) }
            case .clear:
                self.server.received(speakMessage: "Clear", on: self.index)
                self.text = ""
                self.sendText(SpeakReply.cleared(sequence: self.clears).json, context: context)
                self.clears += 1
            case .close:
                self.server.received(speakMessage: "Close", on: self.index)
                var data = ByteBuffer()
                data.write(webSocketErrorCode: .normalClosure)
                let channel = context.channel
                context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))).whenComplete { _ in channel.close(promise: nil) }
            }
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    private func sendText(_ text: String, context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))), promise: nil)
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
    /// Speech and trailing silence of the stretch being heard, and its utterance.
    private var speechBytes = 0
    private var silenceBytes = 0
    private var current: String?
    private var seconds = 0.0
    private var closed = false

    init(server: FakeDeepgramServer, index: Int, idleTimeout: TimeAmount) {
        self.server = server
        self.index = index
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
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
                if let current = self.current, self.speechBytes > 0 { self.server.requeue(current) }
                context.close(promise: nil)
                return
            }
            self.hear(audio, context: context)
        case .text:
            let text = String(buffer: frame.unmaskedData)
            guard let control = ListenControl(json: text) else { return self.close(context: context, code: .protocolError, reason: "DATA-0000") }
            self.server.received(control: control.rawValue, on: self.index)
            switch control {
            case .keepAlive:
                break
            case .finalize:
                let text = self.current ?? ""
                self.send(.results(ListenResults(transcript: text, start: self.seconds, duration: 0.5, isFinal: true, speechFinal: false, fromFinalize: true)), context: context)
                self.current = nil
                self.speechBytes = 0
                self.silenceBytes = 0
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

    /// Audio in: a stretch of speech is the next utterance; 0.3 s into it, speech starts and an
    /// interim result comes; after the endpointing silence, the final ones.
    private func hear(_ audio: ByteBuffer, context: ChannelHandlerContext) {
        let bytes = audio.readableBytes
        self.seconds += Double(bytes) / 16_000
        var loudest: Int16 = 0
        var view = audio
        while let sample = view.readInteger(endianness: .little, as: Int16.self) { loudest = max(loudest, sample == .min ? .max : abs(sample)) }
        if loudest > self.server.speechLevel {
            if self.speechBytes == 0 { self.current = self.server.nextUtterance() }
            let before = self.speechBytes
            self.speechBytes += bytes
            self.silenceBytes = 0
            if let text = self.current, before < 4800, self.speechBytes >= 4800 {
                if self.flag("vad_events") { self.send(.speechStarted(timestamp: self.seconds - 0.3), context: context) }
                if self.flag("interim_results") {
                    let words = text.split(separator: " ")
                    self.send(.results(ListenResults(transcript: words.prefix(max(1, words.count / 2)).joined(separator: " "), start: self.seconds - 0.3, duration: 0.3, isFinal: false, speechFinal: false)), context: context)
                }
            }
            return
        }
        guard self.speechBytes > 0 else { return }
        self.silenceBytes += bytes
        let endpointing = self.query["endpointing"]?.first.flatMap(Int.init)
        let gapMs = endpointing ?? self.query["utterance_end_ms"]?.first.flatMap(Int.init) ?? 1000
        guard self.silenceBytes >= gapMs * 16 else { return }
        if let text = self.current {
            self.send(.results(ListenResults(transcript: text, start: self.seconds - 0.6, duration: 0.6, isFinal: true, speechFinal: endpointing != nil)), context: context)
            if self.query["utterance_end_ms"] != nil, self.flag("interim_results") {
                self.send(.utteranceEnd(lastWordEnd: self.seconds - Double(self.silenceBytes) / 16_000), context: context)
            }
        }
        self.current = nil
        self.speechBytes = 0
        self.silenceBytes = 0
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
