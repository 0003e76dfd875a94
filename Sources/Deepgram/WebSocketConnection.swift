import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A WebSocket client connection (RFC 6455) over TCP, or TLS for `wss://`: whole messages in and
/// out, pings answered, and the server's close code and reason kept.
///
/// Frames are read and written on the channel's event loop, with no task in between: a message
/// goes out with one hand-over to the event loop, and comes in either on `inbound` or, when the
/// connection was opened with a `receive` handler, straight to that handler on the event loop.
///
/// A refused upgrade throws `WebSocketUpgradeRefused` with the HTTP status, headers and body, so
/// an authentication failure can be told from an outage.
public final class WebSocketConnection: Sendable {
    public enum Message: Sendable, Hashable {
        case text(String)
        case binary([UInt8])
    }

    /// The close frame the server sent: its code and reason (Deepgram puts `NET-0001` and the like there).
    public struct Close: Sendable, Hashable {
        public var code: UInt16?
        public var reason: String

        public init(code: UInt16?, reason: String) {
            self.code = code
            self.reason = reason
        }
    }

    /// Messages from the server, in order, unless a `receive` handler takes them. The stream
    /// finishes when the connection closes; the server's close frame, if it sent one, is in
    /// `closeFrame` by then.
    public let inbound: AsyncStream<Message>
    private let inboundContinuation: AsyncStream<Message>.Continuation
    private let receive: (@Sendable (Message?) -> Void)?
    private let channel: any Channel
    private let state = NIOLockedValueBox(State())

    private struct State {
        var closeFrame: Close?
        var closing = false
        var ended = false
        /// Writes handed over to the event loop and not yet made.
        var handedOver = 0
    }

    public var closeFrame: Close? { self.state.withLockedValue { $0.closeFrame } }

    private init(channel: any Channel, receive: (@Sendable (Message?) -> Void)?) {
        self.channel = channel
        self.receive = receive
        (self.inbound, self.inboundContinuation) = AsyncStream.makeStream(of: Message.self)
    }

    /// The event loop that reads and writes the socket.
    public var eventLoop: any EventLoop { self.channel.eventLoop }

    /// Sends a message; never waits (messages go out in order).
    public func send(_ message: Message) {
        self.send([message])
    }

    /// Sends messages in one write to the socket; `written` hears when they went to the socket.
    public func send(_ messages: [Message], written: (@Sendable (NIODeadline) -> Void)? = nil) {
        guard !self.state.withLockedValue({ $0.closing }) else { return }
        let frames = messages.map { message in
            switch message {
            case .text(let text): Self.frame(.text, ByteBuffer(string: text))
            case .binary(let bytes): Self.frame(.binary, ByteBuffer(bytes: bytes))
            }
        }
        self.write(frames, written: written)
    }

    /// Starts the closing handshake; the connection ends when the server answers (or drops it).
    public func close(code: UInt16 = 1000, reason: String = "") {
        let first = self.state.withLockedValue { state in
            defer { state.closing = true }
            return !state.closing
        }
        guard first else { return }
        var data = ByteBuffer()
        data.writeInteger(code)
        data.writeString(reason)
        self.write([Self.frame(.connectionClose, data)])
    }

    /// Writes at once on the event loop, unless writes handed over earlier are still to be made
    /// (they go first); from another thread, hands the write over.
    private func write(_ frames: [WebSocketFrame], written: (@Sendable (NIODeadline) -> Void)? = nil) {
        let channel = self.channel
        @Sendable func writeNow() {
            for frame in frames.dropLast() { channel.write(frame, promise: nil) }
            if let last = frames.last {
                let promise = written.map { written in
                    let promise = channel.eventLoop.makePromise(of: Void.self)
                    promise.futureResult.whenSuccess { written(.now()) }
                    return promise
                }
                channel.write(last, promise: promise)
            }
            channel.flush()
        }
        if channel.eventLoop.inEventLoop, self.state.withLockedValue({ $0.handedOver == 0 }) { return writeNow() }
        self.state.withLockedValue { $0.handedOver += 1 }
        channel.eventLoop.execute {
            self.state.withLockedValue { $0.handedOver -= 1 }
            writeNow()
        }
    }

    static func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
        // A client masks every frame it sends.
        WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
    }

    // MARK: Event loop side

    fileprivate func deliver(_ message: Message) {
        if let receive = self.receive {
            receive(message)
        } else {
            self.inboundContinuation.yield(message)
        }
    }

    /// The server's close frame; true when it began the handshake (it is then answered).
    fileprivate func serverClosed(_ close: Close) -> Bool {
        self.state.withLockedValue { state in
            state.closeFrame = close
            defer { state.closing = true }
            return !state.closing
        }
    }

    fileprivate func ended() {
        let first = self.state.withLockedValue { state in
            defer { state.ended = true }
            return !state.ended
        }
        guard first else { return }
        self.inboundContinuation.finish()
        self.receive?(nil)
    }

    // MARK: Connecting

    private enum Upgrade: Sendable {
        case websocket(WebSocketConnection)
        case refused
    }

    /// Connects and upgrades; the connection then runs until either side closes it. With
    /// `receive`, each message goes to it on the event loop as it arrives, and nil once the
    /// connection has ended; `inbound` then stays empty.
    public static func connect(
        to url: URL, headers: [(String, String)], trustRoots: NIOSSLTrustRoots = .default, connectTimeout: Duration = .seconds(5),
        maxMessageSize: Int = 1 << 22, on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        receive: (@Sendable (Message?) -> Void)? = nil
    ) async throws -> WebSocketConnection {
        guard let scheme = url.scheme?.lowercased(), ["ws", "wss"].contains(scheme), let host = url.host, !host.isEmpty else {
            throw WebSocketUpgradeRefused(status: 0, headers: [], body: "not a ws:// or wss:// URL")
        }
        let secure = scheme == "wss"
        let port = url.port ?? (secure ? 443 : 80)
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?" + query }
        var requestHeaders = HTTPHeaders([("Host", url.port == nil ? host : "\(host):\(port)")])
        for (name, value) in headers { requestHeaders.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: requestHeaders)
        let refusal = NIOLockedValueBox(WebSocketUpgradeRefused(status: 0, headers: [], body: ""))
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = trustRoots
        let sslContext = secure ? try NIOSSLContext(configuration: tls) : nil
        // SNI names a host, never an address; the certificate is then checked against the address.
        let serverName = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil

        let upgrade = try await ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: maxMessageSize) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            let connection = WebSocketConnection(channel: channel, receive: receive)
                            try channel.pipeline.syncOperations.addHandlers(
                                NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 12, maxAccumulatedFrameSize: maxMessageSize),
                                WebSocketFrameHandler(connection: connection, logger: logger))
                            // The one place the end is seen: it also comes when the channel closed
                            // before the handler was in place.
                            channel.closeFuture.whenComplete { _ in connection.ended() }
                            return Upgrade.websocket(connection)
                        }
                    }
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: head, upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in channel.eventLoop.makeSucceededFuture(.refused) })
                    let result = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration))
                    // Sees the response before the upgrade handler takes it, to keep a refusal's status and body.
                    let upgradeHandler = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPClientUpgradeHandler<Upgrade>.self)
                    try channel.pipeline.syncOperations.addHandler(UpgradeResponseRecorder(refusal: refusal), position: .before(upgradeHandler))
                    return result
                }
            }
        switch try await upgrade.get() {
        case .websocket(let connection):
            return connection
        case .refused:
            // The body may still be arriving; give it a moment.
            for _ in 0..<20 where refusal.withLockedValue({ !$0.complete }) { try? await Task.sleep(for: .milliseconds(5)) }
            throw refusal.withLockedValue { $0 }
        }
    }
}

/// Reads an upgraded connection's frames on its event loop: messages to the connection, pings
/// answered, the server's close echoed.
final class WebSocketFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let connection: WebSocketConnection
    private let logger: Logger

    init(connection: WebSocketConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            self.connection.deliver(.text(String(buffer: frame.unmaskedData)))
        case .binary:
            self.connection.deliver(.binary(Array(frame.unmaskedData.readableBytesView)))
        case .ping:
            context.writeAndFlush(Self.wrapOutboundOut(WebSocketConnection.frame(.pong, frame.unmaskedData)), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self)
            let reason = data.readString(length: data.readableBytes) ?? ""
            let channel = context.channel
            // Echo the close when the server began it; either way the connection is done.
            if self.connection.serverClosed(WebSocketConnection.Close(code: code, reason: reason)) {
                var echo = ByteBuffer()
                if let code { echo.writeInteger(code) }
                context.writeAndFlush(Self.wrapOutboundOut(WebSocketConnection.frame(.connectionClose, echo))).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("websocket connection ended", metadata: ["error": "\(String(describing: type(of: error)))"])
        context.close(promise: nil)
    }
}

/// The server did not switch protocols: its status, headers and (the start of) its body.
public struct WebSocketUpgradeRefused: Error, Sendable, Hashable {
    public var status: Int
    public var headers: [String: String]
    public var body: String
    var complete = false

    init(status: Int, headers: [(String, String)], body: String) {
        self.status = status
        self.headers = Dictionary(headers.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { first, _ in first })
        self.body = body
    }
}

/// Keeps the HTTP response of the upgrade request, passing every part on unchanged.
final class UpgradeResponseRecorder: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart

    private let refusal: NIOLockedValueBox<WebSocketUpgradeRefused>

    init(refusal: NIOLockedValueBox<WebSocketUpgradeRefused>) {
        self.refusal = refusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.refusal.withLockedValue { $0 = WebSocketUpgradeRefused(status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) }, body: "") }
            if head.status == .switchingProtocols {
                // Upgraded: nothing more to keep.
                context.fireChannelRead(data)
                context.pipeline.syncOperations.removeHandler(self, promise: nil)
                return
            }
        case .body(let buffer):
            self.refusal.withLockedValue { refusal in
                if refusal.body.utf8.count < 4096 { refusal.body += String(buffer: buffer) }
            }
        case .end:
            self.refusal.withLockedValue { $0.complete = true }
        }
        context.fireChannelRead(data)
    }
}
