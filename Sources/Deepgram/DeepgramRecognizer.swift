import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Speech

/// Where Deepgram is and who is asking.
public struct DeepgramEndpoint: Sendable, Hashable {
    /// The API root, as `DEEPGRAM_STT_DOMAIN` gives it (`https://api.deepgram.com` by default);
    /// `http(s)` becomes `ws(s)` for the sockets.
    public var baseURL: URL
    public var credential: DeepgramCredential
    /// Whom the sockets' TLS trusts: the system's roots, or a private authority (an on-premises
    /// install, a proxy). REST requests use the `StreamingHTTPClient` they are given.
    public var trustRoots: NIOSSLTrustRoots

    public init(baseURL: URL = URL(string: "https://api.deepgram.com")!, credential: DeepgramCredential, trustRoots: NIOSSLTrustRoots = .default) {
        self.baseURL = baseURL
        self.credential = credential
        self.trustRoots = trustRoots
    }

    /// `path` under the root, over WebSocket (`socket`) or HTTP, with `query`.
    func url(_ path: String, query: [URLQueryItem], socket: Bool) -> URL {
        var components = URLComponents(url: self.baseURL, resolvingAgainstBaseURL: false)!
        let secure = ["https", "wss"].contains(components.scheme?.lowercased() ?? "https")
        components.scheme = socket ? (secure ? "wss" : "ws") : (secure ? "https" : "http")
        var base = components.path
        while base.hasSuffix("/") { base.removeLast() }
        components.path = base + path
        components.queryItems = query.isEmpty ? nil : query
        // `+` means a space to Deepgram's query parser; URLComponents leaves it as is.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return components.url!
    }
}

/// Streaming speech-to-text over Deepgram's `/v1/listen` WebSocket.
///
/// Per call: 8 kHz linear16 audio as binary frames (never an empty one), `KeepAlive` while no
/// audio flows, `Finalize` when the engine ends a turn, `CloseStream` at hang-up. A socket that
/// drops is opened again and the last second of audio sent again, so the words being spoken are
/// not lost; after `reconnects` new sockets in a row that brought no result, the stream fails.
public struct DeepgramRecognizer: SpeechRecognizer {
    public var endpoint: DeepgramEndpoint
    public var options: ListenOptions
    public var keepAliveInterval: Duration
    public var replay: Duration
    public var reconnects: Int
    let clock: any Clock<Duration>
    let logger: Logger

    public init(
        endpoint: DeepgramEndpoint, options: ListenOptions = ListenOptions(), keepAliveInterval: Duration = .seconds(4),
        replay: Duration = .seconds(1), reconnects: Int = 2, clock: any Clock<Duration> = ContinuousClock(), logger: Logger
    ) {
        self.endpoint = endpoint
        self.options = options
        self.keepAliveInterval = keepAliveInterval
        self.replay = replay
        self.reconnects = reconnects
        self.clock = clock
        self.logger = logger
    }

    public func open(_ hints: RecognitionOptions) async throws -> any RecognitionSession {
        var options = self.options
        options.language = hints.language
        // Short phrases only: they help nova-3 with the words the template acts on.
        options.keyterms = Array(hints.phrases.filter { $0.split(separator: " ").count <= 3 }.prefix(50))
        let session = DeepgramRecognitionSession(recognizer: self, url: self.endpoint.url("/v1/listen", query: options.queryItems, socket: true))
        try await session.start()
        return session
    }

    /// Opens one socket, mapping a refused upgrade to Deepgram's error. By default on the
    /// caller's event loop when it runs on one (a call's task runs on the call's loop).
    static func connect(
        _ url: URL, endpoint: DeepgramEndpoint, on group: any EventLoopGroup = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        receive: (@Sendable (WebSocketConnection.Message?) -> Void)? = nil
    ) async throws -> WebSocketConnection {
        do {
            return try await WebSocketConnection.connect(
                to: url, headers: [endpoint.credential.authorization], trustRoots: endpoint.trustRoots, on: group, logger: logger, receive: receive)
        } catch let refused as WebSocketUpgradeRefused {
            let body = try? JSONDecoder().decode(DeepgramErrorBody.self, from: Data(refused.body.utf8))
            throw DeepgramError.refused(status: refused.status, code: refused.headers["dg-error"] ?? body?.code, message: body?.message)
                .redacting(endpoint.credential)
        } catch {
            throw DeepgramError.connecting(error)
        }
    }

}

/// Deepgram's JSON error body (`err_code`/`err_msg` on REST; `category`/`message` on some sockets).
struct DeepgramErrorBody: Decodable {
    var code: String?
    var message: String?

    enum CodingKeys: String, CodingKey {
        case err_code, err_msg, category, message
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.code = try container.decodeIfPresent(String.self, forKey: .err_code) ?? container.decodeIfPresent(String.self, forKey: .category)
        self.message = try container.decodeIfPresent(String.self, forKey: .err_msg) ?? container.decodeIfPresent(String.self, forKey: .message)
    }
}

final class DeepgramRecognitionSession: RecognitionSession {
    let events: AsyncThrowingStream<RecognitionEvent, any Error>
    private let continuation: AsyncThrowingStream<RecognitionEvent, any Error>.Continuation
    private let recognizer: DeepgramRecognizer
    private let url: URL
    private let state: NIOLockedValueBox<State>
    private let keepAlive: NIOLockedValueBox<Task<Void, Never>?> = NIOLockedValueBox(nil)

    private struct State {
        var connection: WebSocketConnection?
        var turns = ListenTurns()
        /// The last `replay` of audio, sent again on a new socket.
        var recent: [Int16] = []
        /// Audio went out since the keep-alive loop last looked.
        var audioSinceTick = false
        var closing = false
        var finished = false
        var reconnectsLeft: Int
    }

    init(recognizer: DeepgramRecognizer, url: URL) {
        self.recognizer = recognizer
        self.url = url
        self.state = NIOLockedValueBox(State(reconnectsLeft: recognizer.reconnects))
        (self.events, self.continuation) = AsyncThrowingStream.makeStream()
    }

    private var clock: any Clock<Duration> { self.recognizer.clock }
    private var logger: Logger { self.recognizer.logger }
    private var replaySamples: Int { Int(self.recognizer.replay.components.seconds) * 8000 + Int(self.recognizer.replay.components.attoseconds / 125_000_000_000_000) }

    func start() async throws {
        let connection = try await DeepgramRecognizer.connect(self.url, endpoint: self.recognizer.endpoint, logger: self.logger)
        self.attach(connection)
        let task = Task { await self.keepAliveLoop() }
        self.keepAlive.withLockedValue { $0 = task }
    }

    private func attach(_ connection: WebSocketConnection) {
        self.state.withLockedValue { $0.connection = connection }
        Task { await self.read(connection) }
    }

    func feed(_ samples: [Int16]) {
        // An empty binary frame makes Deepgram close the stream.
        guard !samples.isEmpty else { return }
        let replaySamples = self.replaySamples
        let connection = self.state.withLockedValue { state -> WebSocketConnection? in
            guard !state.closing else { return nil }
            state.recent.append(contentsOf: samples)
            if state.recent.count > replaySamples { state.recent.removeFirst(state.recent.count - replaySamples) }
            state.audioSinceTick = true
            return state.connection
        }
        connection?.send(.binary(Self.littleEndianBytes(samples)))
    }

    func finalize() {
        let (connection, events) = self.state.withLockedValue { state in (state.connection, state.turns.finalizeRequested()) }
        connection?.send(.text(ListenControl.finalize.json))
        for event in events { self.continuation.yield(event) }
    }

    func close() {
        let connection = self.state.withLockedValue { state -> WebSocketConnection? in
            guard !state.closing else { return nil }
            state.closing = true
            return state.connection
        }
        self.keepAlive.withLockedValue { $0?.cancel() }
        guard let connection else { return }
        connection.send(.text(ListenControl.closeStream.json))
        // Deepgram answers with its last results, Metadata and close 1000; if it does not, end it here.
        Task {
            try? await self.clock.sleep(for: .seconds(3))
            connection.close()
            self.finish(nil)
        }
    }

    /// Reads one socket's messages; when it ends without our asking, opens another.
    private func read(_ connection: WebSocketConnection) async {
        for await message in connection.inbound {
            guard case .text(let text) = message else { continue }
            guard let decoded = try? ListenMessage(json: text) else {
                self.logger.debug("deepgram sent a message that is not JSON")
                continue
            }
            let events = self.state.withLockedValue { state in
                // The socket works: a later drop gets the whole budget of new sockets again.
                state.reconnectsLeft = self.recognizer.reconnects
                return state.turns.events(for: decoded)
            }
            for event in events { self.continuation.yield(event) }
        }
        let (closing, retry) = self.state.withLockedValue { state -> (Bool, Bool) in
            guard !state.closing else { return (true, false) }
            state.connection = nil
            let retry = state.reconnectsLeft > 0
            state.reconnectsLeft -= 1
            return (false, retry)
        }
        if closing { return self.finish(nil) }
        let close = connection.closeFrame
        let error = DeepgramError.closed(code: close?.code, reason: close?.reason ?? "")
        // Bad audio stays bad on a new socket; everything else (a drop, an idle or busy server) is worth one more.
        guard retry, !(close?.reason.contains("DATA-0000") ?? false) else { return self.finish(error) }
        self.logger.notice("deepgram stream dropped, opening another", metadata: ["deepgram.close": "\(error)"])
        do {
            let next = try await DeepgramRecognizer.connect(self.url, endpoint: self.recognizer.endpoint, on: connection.eventLoop, logger: self.logger)
            let recent = self.state.withLockedValue { state -> [Int16]? in
                guard !state.closing else { return nil }
                // A new socket: the turn starts over, and the words in flight come again with the replay.
                state.turns = ListenTurns()
                return state.recent
            }
            guard let recent else {
                next.close()
                return self.finish(nil)
            }
            if !recent.isEmpty { next.send(.binary(Self.littleEndianBytes(recent))) }
            self.attach(next)
        } catch {
            self.finish(DeepgramError.connecting(error))
        }
    }

    /// Sends `KeepAlive` after every interval in which no audio went out (Deepgram closes a
    /// socket after 10 s without traffic; with 4 s ticks the gap never passes 8 s).
    private func keepAliveLoop() async {
        while !Task.isCancelled {
            do { try await self.clock.sleep(for: self.recognizer.keepAliveInterval) } catch { return }
            let connection = self.state.withLockedValue { state -> WebSocketConnection? in
                defer { state.audioSinceTick = false }
                return state.closing || state.audioSinceTick ? nil : state.connection
            }
            connection?.send(.text(ListenControl.keepAlive.json))
        }
    }

    private func finish(_ error: (any Error)?) {
        let first = self.state.withLockedValue { state in
            defer { state.finished = true }
            return !state.finished
        }
        guard first else { return }
        self.keepAlive.withLockedValue { $0?.cancel() }
        self.continuation.finish(throwing: error)
    }

    static func littleEndianBytes(_ samples: [Int16]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: samples.count * 2)
        for (index, sample) in samples.enumerated() {
            let value = UInt16(bitPattern: sample)
            bytes[index * 2] = UInt8(value & 0xFF)
            bytes[index * 2 + 1] = UInt8(value >> 8)
        }
        return bytes
    }
}
