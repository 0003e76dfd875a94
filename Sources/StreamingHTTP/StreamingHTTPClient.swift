import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A lean HTTP/1.1 client for requests whose responses stream: one request at a time on each
/// connection, connections kept alive and pooled per origin, TLS through NIOSSL.
///
/// A request goes out in one write (head, body and end), on its connection's event loop: at
/// once when it is made on that loop, else with one hand-over. The response's parts reach its
/// `HTTPResponseReceiver` on that loop as they are read. It follows no redirect (a key is never
/// sent to another host), gives up connecting after `connectTimeout`, and never retries on its
/// own, except once on a fresh connection when a kept-alive one turns out to have been closed
/// before any answer.
public final class StreamingHTTPClient: Sendable {
    /// Trusting the system's roots.
    public static let shared = StreamingHTTPClient()

    private let trustRoots: NIOSSLTrustRoots
    private let connectTimeout: Duration
    let idleTimeout: Duration
    let group: any EventLoopGroup
    private let tls = Mutex<Result<NIOSSLContext, any Error>?>(nil)
    private let pools = Mutex<[Origin: LoopPreferringPool<HTTPConnection>]>([:])

    /// `trustRoots`: the authorities a server's certificate must chain to. `idleTimeout`: how
    /// long an unused connection is kept.
    public init(
        trustRoots: NIOSSLTrustRoots = .default, connectTimeout: Duration = .seconds(5), idleTimeout: Duration = .seconds(60),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.trustRoots = trustRoots
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.group = group
    }

    /// Sends the exchange's request and returns at once; the response goes to its receiver
    /// (which may hear of a failure before this returns).
    public func execute(_ exchange: HTTPExchange) {
        self.run(exchange, reuse: true)
    }

    /// Closes the connections kept for later requests.
    public func closeIdleConnections() {
        let connections = self.pools.withLock { pools in
            defer { for origin in pools.keys { pools[origin]?.idle.removeAll() } }
            return pools.values.flatMap(\.idle)
        }
        for connection in connections { connection.channel.close(promise: nil) }
    }

    /// Connections kept for later requests, for all origins.
    var idleConnections: Int { self.pools.withLock { $0.values.reduce(0) { $0 + $1.idle.count } } }

    /// A request made on one of the group's event loops goes out on a kept connection on that
    /// loop when there is one (`LoopPreferringPool`): it is then written, and its response read,
    /// on the caller's thread.
    func run(_ exchange: HTTPExchange, reuse: Bool) {
        let origin = exchange.target.origin
        let here = MultiThreadedEventLoopGroup.currentEventLoop.flatMap { current in self.group.makeIterator().contains { $0 === current } ? current : nil }
        let (kept, openAhead) = self.pools.withLock { pools -> (HTTPConnection?, Bool) in
            guard reuse else { return (nil, false) }
            return pools[origin, default: LoopPreferringPool()].take(preferring: here) { $0.channel.eventLoop }
        }
        if openAhead, let here {
            self.connect(origin, on: here).whenComplete { result in
                self.pools.withLock { $0[origin]?.opened(on: here) }
                if case .success(let opened) = result { self.release(opened) }
            }
        }
        if let connection = kept {
            guard exchange.attach(connection) else { return self.cancelled(exchange, leaving: connection) }
            if connection.channel.eventLoop === here {
                connection.begin(exchange, reused: true)
            } else {
                connection.channel.eventLoop.execute { connection.begin(exchange, reused: true) }
            }
            return
        }
        self.connect(origin, on: here ?? self.group.any()).whenComplete { result in
            switch result {
            case .success(let connection):
                guard exchange.attach(connection) else { return self.cancelled(exchange, leaving: connection) }
                connection.begin(exchange, reused: false)
            case .failure(let error):
                exchange.receiver.ended(.failure(exchange.isCancelled ? CancellationError() : error))
            }
        }
    }

    /// An exchange cancelled before it reached `connection`, which stays unused.
    private func cancelled(_ exchange: HTTPExchange, leaving connection: HTTPConnection) {
        exchange.receiver.ended(.failure(CancellationError()))
        self.release(connection)
    }

    /// A connection whose response ended and which may carry another request.
    func release(_ connection: HTTPConnection) {
        guard connection.channel.isActive else { return }
        self.pools.withLock { $0[connection.origin, default: LoopPreferringPool()].idle.append(connection) }
        connection.channel.eventLoop.execute { connection.becameIdle() }
    }

    /// A connection that closed: it is not handed out again.
    func remove(_ connection: HTTPConnection) {
        self.pools.withLock { pools in pools[connection.origin]?.idle.removeAll { $0 === connection } }
    }

    private func connect(_ origin: Origin, on eventLoop: any EventLoop) -> EventLoopFuture<HTTPConnection> {
        let context: NIOSSLContext?
        do {
            context = origin.secure ? try self.sslContext() : nil
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        // SNI names a host, never an address; the certificate is then checked against the address.
        let serverName = (try? SocketAddress(ipAddress: origin.host, port: 0)) == nil ? origin.host : nil
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(self.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let context { try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName)) }
                    try pipeline.addHTTPClientHandlers(leftOverBytesStrategy: .dropBytes)
                    try pipeline.addHandler(HTTPConnection(channel: channel, origin: origin, client: self))
                }
            }
            .connect(host: origin.host, port: origin.port)
            .flatMapThrowing { channel in try channel.pipeline.syncOperations.handler(type: HTTPConnection.self) }
    }

    private func sslContext() throws -> NIOSSLContext {
        try self.tls.withLock { tls in
            if let tls { return try tls.get() }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = self.trustRoots
            configuration.applicationProtocols = ["http/1.1"]
            let made = Result { try NIOSSLContext(configuration: configuration) }
            tls = made
            return try made.get()
        }
    }
}

/// Where a request goes: scheme, host and port, and the request's line and fixed headers, parsed
/// and built once for any number of bodies.
public struct HTTPTarget: Sendable {
    let origin: Origin
    let head: HTTPRequestHead

    /// A POST to `url` (http or https) with `headers`; `Host` and each body's length are added.
    public init(post url: String, headers: [(String, String)]) throws(HTTPTransportError) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = components.host, !host.isEmpty
        else { throw .invalidURL }
        let secure = scheme == "https"
        let port = components.port ?? (secure ? 443 : 80)
        self.origin = Origin(secure: secure, host: host, port: port)
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        let name = host.contains(":") ? "[\(host)]" : host
        var fields = HTTPHeaders([("Host", components.port == nil ? name : "\(name):\(port)")])
        fields.add(contentsOf: headers)
        self.head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target, headers: fields)
    }
}

struct Origin: Hashable, Sendable {
    var secure: Bool
    var host: String
    var port: Int
}

/// Where a response goes, part by part, on its connection's event loop.
public protocol HTTPResponseReceiver: AnyObject, Sendable {
    /// The request's last byte went to the socket at `time` (once per connection it was written
    /// on: a request retried on a new connection is sent again). Nothing by default.
    func requestSent(at time: NIODeadline)
    func receiveHead(_ head: HTTPResponseHead)
    /// A piece of the body. Throwing ends the exchange with that error and closes the connection.
    func receiveBody(_ buffer: ByteBuffer) throws
    /// Called once: success after the body's last byte, or the error (`CancellationError` after
    /// `HTTPExchange.cancel()`).
    func ended(_ result: Result<Void, any Error>)
}

extension HTTPResponseReceiver {
    public func requestSent(at time: NIODeadline) {}
}

public enum HTTPTransportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not an http:// or https:// URL with a host.
    case invalidURL
    /// The connection closed before the response ended.
    case closedEarly
    /// The exchange was not over in the time it was given.
    case timedOut

    public var description: String {
        switch self {
        case .invalidURL: "invalid URL"
        case .closedEarly: "connection closed before the response ended"
        case .timedOut: "no complete response in time"
        }
    }
}

/// One request and its response: made first, so whoever may cancel it holds it before it starts.
public final class HTTPExchange: Sendable {
    let target: HTTPTarget
    let body: ByteBuffer
    let receiver: any HTTPResponseReceiver
    private let state = Mutex<(connection: HTTPConnection?, cancelled: Bool)>((nil, false))

    /// `body` to `target`; the response goes to `receiver`.
    public init(target: HTTPTarget, body: ByteBuffer, receiver: any HTTPResponseReceiver) {
        self.target = target
        self.body = body
        self.receiver = receiver
    }

    var isCancelled: Bool { self.state.withLock { $0.cancelled } }

    /// Stops the exchange: its connection is closed unless the response already ended, and the
    /// receiver is told with a `CancellationError`.
    public func cancel() {
        let connection = self.state.withLock { state in
            defer { state.cancelled = true }
            return state.cancelled ? nil : state.connection
        }
        guard let connection else { return }
        connection.channel.eventLoop.execute { connection.cancel(self) }
    }

    /// Binds the exchange to the connection carrying it; false once cancelled. (Between two
    /// connections it still names the first: a cancel sent there finds it gone and does nothing,
    /// and the next `attach` sees the cancellation.)
    func attach(_ connection: HTTPConnection) -> Bool {
        self.state.withLock { state in
            if state.cancelled { return false }
            state.connection = connection
            return true
        }
    }
}

/// One connection's end of the pipeline: writes an exchange's request and hands its response on.
/// Its state is only touched on its channel's event loop.
final class HTTPConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let channel: any Channel
    let origin: Origin
    private let client: StreamingHTTPClient
    private var context: ChannelHandlerContext?
    private var current: HTTPExchange?
    private var reused = false
    private var answered = false
    private var keepAlive = true
    private var idleTimer: Scheduled<Void>?
    /// The error that closed the connection while it carried no exchange.
    private var closedBy: (any Error)?

    init(channel: any Channel, origin: Origin, client: StreamingHTTPClient) {
        self.channel = channel
        self.origin = origin
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func begin(_ exchange: HTTPExchange, reused: Bool) {
        self.channel.eventLoop.assertInEventLoop()
        self.idleTimer?.cancel()
        self.idleTimer = nil
        guard !exchange.isCancelled else {
            exchange.receiver.ended(.failure(CancellationError()))
            return self.client.release(self)
        }
        self.current = exchange
        self.reused = reused
        self.answered = false
        self.keepAlive = true
        guard let context = self.context, self.channel.isActive else {
            // Closed while it waited in the pool, or (a new one) before it was used: its TLS
            // handshake failed, say.
            return self.failCurrent(self.closedBy ?? HTTPTransportError.closedEarly)
        }
        var head = exchange.target.head
        head.headers.add(name: "Content-Length", value: String(exchange.body.readableBytes))
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        let sent = context.eventLoop.makePromise(of: Void.self)
        sent.futureResult.whenSuccess { exchange.receiver.requestSent(at: .now()) }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: sent)
    }

    func becameIdle() {
        guard self.current == nil, self.channel.isActive else { return }
        self.idleTimer?.cancel()
        let channel = self.channel
        self.idleTimer = channel.eventLoop.scheduleTask(in: TimeAmount(self.client.idleTimeout)) {
            channel.close(promise: nil)
        }
    }

    func cancel(_ exchange: HTTPExchange) {
        guard self.current === exchange else { return }
        self.end(.failure(CancellationError()))
        self.channel.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange = self.current else {
            // An answer nobody asked for (a server's 408 before it closes an idle connection):
            // the connection's state is unknown, so it carries nothing more.
            self.client.remove(self)
            return context.close(promise: nil)
        }
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.answered = true
            self.keepAlive = head.isKeepAlive
            exchange.receiver.receiveHead(head)
        case .body(let buffer):
            do {
                try exchange.receiver.receiveBody(buffer)
            } catch {
                self.end(.failure(error))
                context.close(promise: nil)
            }
        case .end:
            self.current = nil
            if self.keepAlive { self.client.release(self) } else { context.close(promise: nil) }
            exchange.receiver.ended(.success(()))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.idleTimer?.cancel()
        self.client.remove(self)
        self.failCurrent(HTTPTransportError.closedEarly)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.current == nil { self.closedBy = self.closedBy ?? error }
        self.failCurrent(error)
        context.close(promise: nil)
    }

    /// A kept-alive connection the server closed before answering is tried again once, on a new
    /// connection; anything else ends the exchange.
    private func failCurrent(_ error: any Error) {
        guard let exchange = self.current else { return }
        if self.reused, !self.answered {
            self.current = nil
            return self.client.run(exchange, reuse: false)
        }
        self.end(.failure(error))
    }

    private func end(_ result: Result<Void, any Error>) {
        guard let exchange = self.current else { return }
        self.current = nil
        exchange.receiver.ended(result)
    }
}
