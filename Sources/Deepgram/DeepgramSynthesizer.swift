import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Speech

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
public enum SpeakReply: Sendable, Hashable, Codable {
    case metadata(requestID: String)
    case flushed(sequence: Int)
    case cleared(sequence: Int)
    case warning(code: String, message: String)
    case other(String)

    private struct Wire: Codable {
        var type: String
        var request_id: String?
        var sequence_id: Int?
        var warn_code: String?
        var warn_msg: String?
    }

    public init(from decoder: any Decoder) throws {
        let wire = try Wire(from: decoder)
        switch wire.type {
        case "Metadata": self = .metadata(requestID: wire.request_id ?? "")
        case "Flushed": self = .flushed(sequence: wire.sequence_id ?? 0)
        case "Cleared": self = .cleared(sequence: wire.sequence_id ?? 0)
        case "Warning": self = .warning(code: wire.warn_code ?? "", message: wire.warn_msg ?? "")
        default: self = .other(wire.type)
        }
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
}

/// Text to speech with Deepgram's Aura voices, 8 kHz linear16, in 20 ms frames.
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
    private let http: HTTPClient
    private let logger: Logger
    private let idle = NIOLockedValueBox<[SpeakSocket]>([])

    public var voice: String { "deepgram \(self.model)" }

    /// Sockets open and free for the next utterance.
    public var idleSockets: Int { self.idle.withLockedValue { $0.count } }

    public init(endpoint: DeepgramEndpoint, model: String = "aura-2-thalia-en", transport: Transport = .webSocket, http: HTTPClient = .shared, logger: Logger) {
        self.endpoint = endpoint
        self.model = model
        self.transport = transport
        self.http = http
        self.logger = logger
    }

    var query: [URLQueryItem] {
        [URLQueryItem(name: "model", value: self.model), URLQueryItem(name: "encoding", value: "linear16"), URLQueryItem(name: "sample_rate", value: "8000")]
    }

    public func synthesize(_ text: String) -> AsyncThrowingStream<[Int16], any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: [Int16].self, throwing: (any Error).self)
        switch self.transport {
        case .rest:
            let task = Task {
                do {
                    try await self.speakREST(text) { continuation.yield($0) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        case .webSocket:
            let utterance = NIOLockedValueBox(Utterance())
            // Not tied to the consumer's task: a socket read is never cancelled, so it can be reused.
            Task {
                do {
                    try await self.speakOverSocket(text, utterance: utterance) { samples in
                        if !utterance.withLockedValue({ $0.stopped }) { continuation.yield(samples) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { termination in
                guard case .cancelled = termination else { return }
                let socket = utterance.withLockedValue { state -> SpeakSocket? in
                    state.stopped = true
                    guard let socket = state.socket else { return nil }
                    state.clearSent = true
                    return socket
                }
                socket?.connection.send(.text(SpeakControl.clear.json))
            }
        }
        return stream
    }

    // MARK: WebSocket

    /// One utterance on a socket: the socket while in use, and whether the listener went away.
    struct Utterance {
        var socket: SpeakSocket?
        var stopped = false
        /// `Clear` went out: the socket is reused only after `Cleared`.
        var clearSent = false
    }

    private func speakOverSocket(_ text: String, utterance: NIOLockedValueBox<Utterance>, yield: ([Int16]) -> Void) async throws {
        let socket = try await self.takeSocket()
        let stopped = utterance.withLockedValue { state in
            if !state.stopped { state.socket = socket }
            return state.stopped
        }
        if stopped { return self.put(socket) }
        socket.connection.send(.text(SpeakControl.speak(text).json))
        socket.connection.send(.text(SpeakControl.flush.json))
        var framer = PCMFramer()
        /// Done with the socket unless a `Clear` is still to be answered.
        func release() -> Bool {
            let done = utterance.withLockedValue { state in
                if !state.clearSent { state.socket = nil }
                return !state.clearSent
            }
            if done { self.put(socket) }
            return done
        }
        while let message = await socket.next() {
            switch message {
            case .binary(let bytes):
                for frame in framer.append(bytes) { yield(frame) }
            case .text(let json):
                switch try? JSONDecoder().decode(SpeakReply.self, from: Data(json.utf8)) {
                case .flushed?:
                    let rest = framer.finish()
                    if !rest.isEmpty { yield(rest) }
                    if release() { return }
                case .cleared?:
                    utterance.withLockedValue { $0.clearSent = false }
                    if release() { return }
                case .warning(let code, _)?:
                    self.logger.notice("deepgram speak warning", metadata: ["deepgram.warning": "\(code)"])
                default:
                    break
                }
            }
        }
        let close = socket.connection.closeFrame
        throw DeepgramError.closed(code: close?.code, reason: close?.reason ?? "")
    }

    private func takeSocket() async throws -> SpeakSocket {
        if let socket = self.idle.withLockedValue({ $0.popLast() }) { return socket }
        let url = self.endpoint.url("/v1/speak", query: self.query, socket: true)
        return SpeakSocket(try await DeepgramRecognizer.connect(url, credential: self.endpoint.credential, logger: self.logger))
    }

    private func put(_ socket: SpeakSocket) {
        self.idle.withLockedValue { $0.append(socket) }
    }

    /// Closes the idle sockets (each sends `Close` first).
    public func shutdown() {
        for socket in self.idle.withLockedValue({ sockets in defer { sockets.removeAll() }; return sockets }) {
            socket.connection.send(.text(SpeakControl.close.json))
            socket.connection.close()
        }
    }

    // MARK: REST

    private func speakREST(_ text: String, yield: ([Int16]) -> Void) async throws {
        let response = try await self.endpoint.post(
            "/v1/speak", query: self.query + [URLQueryItem(name: "container", value: "none")], json: try JSONEncoder().encode(["text": text]), http: self.http,
            logger: self.logger)
        var framer = PCMFramer()
        do {
            for try await piece in response.body {
                for frame in framer.append(piece.readableBytesView) { yield(frame) }
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw DeepgramError.unreachable("the audio stream broke")
        }
        let rest = framer.finish()
        if !rest.isEmpty { yield(rest) }
    }

}

extension DeepgramEndpoint {
    /// `POST path?query` with a JSON body and the credential: the response when it is 200 OK,
    /// else Deepgram's error (status, `dg-error` or `err_code`, `err_msg`).
    func post(_ path: String, query: [URLQueryItem], json: Data, http: HTTPClient, logger: Logger) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: self.url(path, query: query, socket: false).absoluteString)
        request.method = .POST
        let (name, value) = self.credential.authorization
        request.headers.add(name: name, value: value)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: json))
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(10), logger: logger)
        } catch {
            throw DeepgramError.unreachable(String(describing: type(of: error)))
        }
        guard response.status == .ok else {
            let body = try? await response.body.collect(upTo: 16 << 10)
            let error = body.flatMap { try? JSONDecoder().decode(DeepgramErrorBody.self, from: Data($0.readableBytesView)) }
            throw DeepgramError.refused(status: Int(response.status.code), code: response.headers.first(name: "dg-error") ?? error?.code, message: error?.message)
        }
        return response
    }
}

/// A speak socket with its one reader, used by one utterance at a time.
final class SpeakSocket: @unchecked Sendable {
    let connection: WebSocketConnection
    private var iterator: AsyncStream<WebSocketConnection.Message>.Iterator

    init(_ connection: WebSocketConnection) {
        self.connection = connection
        self.iterator = connection.inbound.makeAsyncIterator()
    }

    func next() async -> WebSocketConnection.Message? { await self.iterator.next() }
}
