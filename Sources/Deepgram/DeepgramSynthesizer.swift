import Foundation
import JSON
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Speech
import StreamingHTTP

/// What the client sends on a speak socket.
public enum SpeakControl: Sendable, Hashable {
    /// Appends text to the socket's buffer.
    case speak(String)
    /// Synthesises the buffer; `Flushed` follows the audio.
    case flush
    /// Drops buffered text and audio (barge-in); `Cleared` answers.
    case clear
    case close

    public var json: String {
        switch self {
        case .speak(let text):
            let encoded = (try? JSONEncoder().encode(["type": "Speak", "text": text])).map { String(decoding: $0, as: UTF8.self) }
            return encoded ?? #"{"type":"Speak","text":""}"#
        case .flush: return #"{"type":"Flush"}"#
        case .clear: return #"{"type":"Clear"}"#
        case .close: return #"{"type":"Close"}"#
        }
    }

    public init?(json: String) {
        guard let object = try? JSONDecoder().decode([String: String].self, from: Data(json.utf8)) else { return nil }
        switch object["type"] {
        case "Speak": self = .speak(object["text"] ?? "")
        case "Flush": self = .flush
        case "Clear": self = .clear
        case "Close": self = .close
        default: return nil
        }
    }
}

/// What Deepgram sends as text on a speak socket.
public enum SpeakReply: Sendable, Hashable, Encodable {
    case metadata(requestID: String)
    case flushed(sequence: Int)
    case cleared(sequence: Int)
    case warning(code: String, message: String)
    case other(String)

    private struct Wire: Encodable {
        var type: String
        var request_id: String?
        var sequence_id: Int?
        var warn_code: String?
        var warn_msg: String?
    }

    public func encode(to encoder: any Encoder) throws {
        let wire: Wire
        switch self {
        case .metadata(let id): wire = Wire(type: "Metadata", request_id: id)
        case .flushed(let sequence): wire = Wire(type: "Flushed", sequence_id: sequence)
        case .cleared(let sequence): wire = Wire(type: "Cleared", sequence_id: sequence)
        case .warning(let code, let message): wire = Wire(type: "Warning", warn_code: code, warn_msg: message)
        case .other(let type): wire = Wire(type: type)
        }
        try wire.encode(to: encoder)
    }

    public var json: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }

    /// A reply read with `JSONReader`, with `JSONDecoder`'s rules for what is left out or null.
    public init(json: String) throws(DeepgramError) {
        self = try DeepgramMessage.read(json) { type, reply throws(JSONShapeError) in
            switch type {
            case "Metadata": .metadata(requestID: try reply.string("request_id") ?? "")
            case "Flushed": .flushed(sequence: try reply.int("sequence_id") ?? 0)
            case "Cleared": .cleared(sequence: try reply.int("sequence_id") ?? 0)
            case "Warning": .warning(code: try reply.string("warn_code") ?? "", message: try reply.string("warn_msg") ?? "")
            default: .other(type)
            }
        }
    }
}

/// Text to speech with Deepgram's Aura voices, 8 kHz linear16.
///
/// Over the `/v1/speak` WebSocket by default: each utterance takes an idle socket (or opens
/// one), sends `Speak` and `Flush`, and streams the audio until `Flushed`. A consumer that stops
/// listening (barge-in) sends `Clear`; the socket goes back to the pool once `Cleared` comes.
/// Over REST (`POST /v1/speak`, `container=none`) when `transport` is `.rest`: also the way to
/// pre-render fixed lines without holding a socket.
public final class DeepgramSynthesizer: SpeechSynthesizer {
    public enum Transport: Sendable { case webSocket, rest }

    public let endpoint: DeepgramEndpoint
    public let model: String
    public let transport: Transport
    /// Times a REST line refused with 429 or 5xx (or not reached at all) is tried again, after
    /// 0.25 s, then 0.5 s, before it fails (and the engine falls back to the offline voice).
    public let restRetries: Int
    private let http: StreamingHTTPClient
    private let clock: any Clock<Duration>
    private let logger: Logger
    private let pool = NIOLockedValueBox(Pool())

    private struct Pool {
        var sockets = LoopPreferringPool<SpeakSocket>()
        var shutDown = false
    }

    public var voice: String { "deepgram \(self.model)" }

    /// Sockets open and free for the next utterance.
    public var idleSockets: Int { self.pool.withLockedValue { $0.sockets.idle.count } }

    public init(
        endpoint: DeepgramEndpoint, model: String = "aura-2-thalia-en", transport: Transport = .webSocket, restRetries: Int = 2, http: StreamingHTTPClient = .shared,
        clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.endpoint = endpoint
        self.model = model
        self.transport = transport
        self.restRetries = restRetries
        self.http = http
        self.clock = clock
        self.logger = logger
    }

    var query: [URLQueryItem] {
        [URLQueryItem(name: "model", value: self.model), URLQueryItem(name: "encoding", value: "linear16"), URLQueryItem(name: "sample_rate", value: "8000")]
    }

    public func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        .pushed { try await self.synthesize(text, into: $0) }
    }

    /// Over the socket, each message's audio goes to `sink` on the socket's event loop as it arrives.
    public func synthesize(_ text: String, into sink: some SpeechSink) async throws {
        guard case .webSocket = self.transport else {
            return try await self.speakREST(text) { sink.play($0) }
        }
        let utterance = SpeakUtterance(text: text, timeToFirstByte: { sink.timeToFirstByte($0) }) { sink.play($0) }
        // The call's event loop, when the sink has one: a socket there hands it the audio without a thread hop.
        let loop = sink.executor as? any EventLoop
        try await withTaskCancellationHandler {
            // A free socket (one that closed while it waited is not used), else a new one, opened
            // apart from this task: the new socket outlives this line, in the pool.
            let pooled = self.take(preferring: loop)
            if pooled?.speak(utterance) != true {
                Task {
                    do {
                        let socket = try await self.openSocket(on: loop)
                        if !socket.speak(utterance) { throw socket.closedError }
                    } catch {
                        utterance.end(error)
                    }
                }
            }
            try await utterance.ended()
        } onCancel: {
            utterance.stop()
        }
    }

    // MARK: WebSocket

    /// A free socket, on `loop` when one is there. A line on another loop's socket is heard one
    /// thread hop later; a socket is then opened on `loop` for its next line.
    private func take(preferring loop: (any EventLoop)?) -> SpeakSocket? {
        let (socket, openAhead) = self.pool.withLockedValue { $0.sockets.take(preferring: loop) { $0.eventLoop } }
        if openAhead, let loop {
            Task {
                let opened = try? await self.openSocket(on: loop)
                let keep = self.pool.withLockedValue { pool in
                    pool.sockets.opened(on: loop)
                    guard let opened, !pool.shutDown else { return false }
                    pool.sockets.idle.append(opened)
                    return true
                }
                if !keep { opened?.close() }
            }
        }
        return socket
    }

    private func openSocket(on loop: (any EventLoop)?) async throws -> SpeakSocket {
        let url = self.endpoint.url("/v1/speak", query: self.query, socket: true)
        let socket = SpeakSocket(logger: self.logger) { [weak self] socket, reusable in
            let kept = self?.pool.withLockedValue { pool -> Bool in
                pool.sockets.idle.removeAll { $0 === socket }
                guard reusable, !pool.shutDown else { return false }
                pool.sockets.idle.append(socket)
                return true
            }
            if reusable && kept != true { socket.close() }
        }
        socket.attach(
            try await DeepgramRecognizer.connect(url, endpoint: self.endpoint, on: loop ?? MultiThreadedEventLoopGroup.singleton, logger: self.logger) {
                socket.receive($0)
            })
        return socket
    }

    /// Closes the idle sockets (each sends `Close` first), and each busy one when its line ends.
    public func shutdown() {
        let sockets = self.pool.withLockedValue { pool in
            pool.shutDown = true
            defer { pool.sockets.idle.removeAll() }
            return pool.sockets.idle
        }
        for socket in sockets { socket.close() }
    }

    // MARK: REST

    /// Hands the line's audio to `play` as it arrives, until it ends or `play` refuses more.
    private func speakREST(_ text: String, play: ([Int16]) -> Bool) async throws {
        let json = try JSONEncoder().encode(["text": text])
        var retry = 0
        let response: HTTPStreamedResponse
        while true {
            do {
                response = try await self.endpoint.post("/v1/speak", query: self.query + [URLQueryItem(name: "container", value: "none")], json: json, http: self.http)
                break
            } catch let error as DeepgramError where retry < self.restRetries && error.isTransient {
                retry += 1
                self.logger.notice("deepgram speak failed, trying again", metadata: ["error": "\(error)", "retry": "\(retry)"])
                try await self.clock.sleep(for: .milliseconds(125 << retry))
            }
        }
        var decoder = PCMDecoder()
        do {
            for try await piece in response.body {
                let samples = decoder.decode(piece.readableBytesView)
                if !samples.isEmpty, !play(samples) { return }
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw DeepgramError.unreachable("the audio stream broke")
        }
        let rest = decoder.finish()
        if !rest.isEmpty { _ = play(rest) }
    }

}

extension DeepgramEndpoint {
    /// `POST path?query` with a JSON body and the credential: the response when it is 200 OK,
    /// else Deepgram's error (status, `dg-error` or `err_code`, `err_msg`).
    /// Gives up after 10 s, body included.
    func post(_ path: String, query: [URLQueryItem], json: Data, http: StreamingHTTPClient) async throws -> HTTPStreamedResponse {
        let response: HTTPStreamedResponse
        do {
            let target = try HTTPTarget(
                post: self.url(path, query: query, socket: false).absoluteString, headers: [self.credential.authorization, ("Content-Type", "application/json")])
            response = try await http.post(target, body: ByteBuffer(bytes: json), timeout: .seconds(10))
        } catch {
            throw DeepgramError.connecting(error)
        }
        guard response.head.status == .ok else {
            let body = try? await response.collect(upTo: 16 << 10)
            let error = body.flatMap { try? JSONDecoder().decode(DeepgramErrorBody.self, from: Data($0.readableBytesView)) }
            throw DeepgramError.refused(
                status: Int(response.head.status.code), code: response.head.headers.first(name: "dg-error") ?? error?.code, message: error?.message
            ).redacting(self.credential)
        }
        return response
    }
}

/// One line to speak: its text, where its audio goes, and the socket speaking it once it has one.
final class SpeakUtterance: Sendable {
    private struct State {
        var socket: SpeakSocket?
        var stopped = false
        /// How the line ended, once it has.
        var outcome: Result<Void, any Error>?
        var waiter: CheckedContinuation<Void, any Error>?
    }

    let text: String
    /// Hears the service's time to the line's first audio.
    let timeToFirstByte: @Sendable (Duration) -> Void
    private let deliver: @Sendable ([Int16]) -> Bool
    private let state = NIOLockedValueBox(State())

    init(text: String, timeToFirstByte: @escaping @Sendable (Duration) -> Void = { _ in }, deliver: @escaping @Sendable ([Int16]) -> Bool) {
        self.text = text
        self.timeToFirstByte = timeToFirstByte
        self.deliver = deliver
    }

    /// Binds the line to its socket; false when the listener already went away.
    func attach(_ socket: SpeakSocket) -> Bool {
        self.state.withLockedValue { state in
            guard !state.stopped else { return false }
            state.socket = socket
            return true
        }
    }

    /// Hands audio to the listener, on the socket's event loop; stops the line when it wants no more.
    func play(_ samples: [Int16]) {
        guard !samples.isEmpty, !self.deliver(samples) else { return }
        self.stop()
    }

    /// The listener went away (barge-in): the line ends now, and its socket clears what it still has of it.
    func stop() {
        let socket = self.state.withLockedValue { state in
            state.stopped = true
            return state.socket
        }
        self.end(nil)
        socket?.clear(self)
    }

    /// The line is over: complete or stopped (nil), or broken off. Only the first call counts.
    func end(_ error: (any Error)?) {
        let waiter = self.state.withLockedValue { state -> (CheckedContinuation<Void, any Error>, Result<Void, any Error>)? in
            guard state.outcome == nil else { return nil }
            let outcome: Result<Void, any Error> = error.map { .failure($0) } ?? .success(())
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter.map { ($0, outcome) }
        }
        waiter?.0.resume(with: waiter!.1)
    }

    /// Waits until the line is over; throws how it broke off.
    func ended() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = self.state.withLockedValue { state -> Result<Void, any Error>? in
                if state.outcome == nil { state.waiter = continuation }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }
}

/// A speak socket, used by one utterance at a time. Its messages are read on the event loop,
/// where each message's audio is handed straight to the utterance's listener.
final class SpeakSocket: Sendable {
    private struct State {
        var connection: WebSocketConnection?
        var utterance: SpeakUtterance?
        var decoder = PCMDecoder()
        /// When the line's `Speak` and `Flush` went to the socket, until its first audio came.
        var sentAt: NIODeadline?
        /// `Clear` went out: audio is dropped, and the socket is free again at `Cleared`.
        var clearSent = false
        var closed = false
    }

    private let state = NIOLockedValueBox(State())
    private let logger: Logger
    /// Tells the pool the socket is free (true) or closed (false).
    private let release: @Sendable (SpeakSocket, _ reusable: Bool) -> Void

    init(logger: Logger, release: @escaping @Sendable (SpeakSocket, _ reusable: Bool) -> Void) {
        self.logger = logger
        self.release = release
    }

    func attach(_ connection: WebSocketConnection) {
        self.state.withLockedValue { $0.connection = connection }
    }

    /// The loop the socket's messages arrive on.
    var eventLoop: (any EventLoop)? { self.state.withLockedValue { $0.connection?.eventLoop } }

    /// Sends the line: `Speak` and `Flush` in one write. False, and nothing sent, when the socket has closed.
    func speak(_ utterance: SpeakUtterance) -> Bool {
        let connection = self.state.withLockedValue { state -> WebSocketConnection? in
            guard !state.closed, let connection = state.connection else { return nil }
            state.utterance = utterance
            state.decoder = PCMDecoder()
            state.sentAt = nil
            return connection
        }
        guard let connection else { return false }
        connection.send([.text(SpeakControl.speak(utterance.text).json), .text(SpeakControl.flush.json)]) { sentAt in
            self.state.withLockedValue { state in if state.utterance === utterance { state.sentAt = sentAt } }
        }
        // A listener gone before the line was bound to the socket: cleared as if it barged in.
        if !utterance.attach(self) { self.clear(utterance) }
        return true
    }

    /// How the socket ended, as Deepgram's close frame says.
    var closedError: DeepgramError {
        let close = self.state.withLockedValue { $0.connection?.closeFrame }
        return DeepgramError.closed(code: close?.code, reason: close?.reason ?? "")
    }

    func clear(_ utterance: SpeakUtterance) {
        let connection = self.state.withLockedValue { state -> WebSocketConnection? in
            guard state.utterance === utterance, !state.clearSent else { return nil }
            state.clearSent = true
            return state.connection
        }
        connection?.send(.text(SpeakControl.clear.json))
    }

    func close() {
        let connection = self.state.withLockedValue { $0.connection }
        connection?.send(.text(SpeakControl.close.json))
        connection?.close()
    }

    /// A message from Deepgram, on the event loop; nil once the socket has closed.
    func receive(_ message: WebSocketConnection.Message?) {
        switch message {
        case .binary(let bytes):
            let readAt = NIODeadline.now()
            let (samples, utterance, sentAt) = self.state.withLockedValue { state -> ([Int16], SpeakUtterance?, NIODeadline?) in
                guard let utterance = state.utterance, !state.clearSent else { return ([], nil, nil) }
                defer { state.sentAt = nil }
                return (state.decoder.decode(bytes), utterance, state.sentAt)
            }
            if let utterance, let sentAt { utterance.timeToFirstByte(.nanoseconds((readAt - sentAt).nanoseconds)) }
            utterance?.play(samples)
        case .text(let json):
            switch try? SpeakReply(json: json) {
            case .flushed?:
                // The line's audio is complete; after a `Clear`, the socket waits for `Cleared`.
                let ended = self.state.withLockedValue { state -> (rest: [Int16], utterance: SpeakUtterance)? in
                    guard let utterance = state.utterance, !state.clearSent else { return nil }
                    state.utterance = nil
                    return (state.decoder.finish(), utterance)
                }
                guard let ended else { return }
                ended.utterance.play(ended.rest)
                // Free before the line ends: the listener's next line may take this socket.
                self.release(self, true)
                ended.utterance.end(nil)
            case .cleared?:
                let utterance = self.state.withLockedValue { state -> SpeakUtterance? in
                    state.clearSent = false
                    defer { state.utterance = nil }
                    return state.utterance
                }
                self.release(self, true)
                utterance?.end(nil)
            case .warning(let code, _)?:
                self.logger.notice("deepgram speak warning", metadata: ["deepgram.warning": "\(code)"])
            default:
                break
            }
        case nil:
            let utterance = self.state.withLockedValue { state in
                state.closed = true
                defer { state.utterance = nil }
                return state.utterance
            }
            utterance?.end(self.closedError)
            self.release(self, false)
        }
    }
}
