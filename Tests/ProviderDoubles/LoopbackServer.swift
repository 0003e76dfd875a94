import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A TCP server on a free loopback port that keeps its connections, so a double can close
/// everything it opened when a test ends.
final class LoopbackServer: Sendable {
    private let listener = NIOLockedValueBox<(any Channel)?>(nil)
    private let connections = NIOLockedValueBox<[any Channel]>([])
    private let accepted = NIOLockedValueBox(0)

    /// Connections accepted since `start`.
    var acceptedConnections: Int { self.accepted.withLockedValue { $0 } }

    /// Binds (`port` 0: a free one) and returns the port; `initializer` sets up each connection's
    /// pipeline, behind TLS when `tls` is given. Connections are served on `group`'s loops.
    func start(
        port: Int = 0, tls: NIOSSLContext? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) async throws -> Int {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                self.connections.withLockedValue { $0.append(channel) }
                self.accepted.withLockedValue { $0 += 1 }
                if let tls {
                    do {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
                return initializer(channel)
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        self.listener.withLockedValue { $0 = channel }
        return channel.localAddress!.port!
    }

    /// The connections open now.
    var openConnections: [any Channel] { self.connections.withLockedValue { $0.filter(\.isActive) } }

    /// Cuts every connection open now (the listener stays).
    func dropConnections() async {
        let channels = self.connections.withLockedValue { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { try? await channel.close() }
    }

    func stop() async {
        await self.dropConnections()
        try? await self.listener.withLockedValue { $0 }?.close()
    }
}

/// Gathers one HTTP request's head and body from its parts.
struct RequestCollector {
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    /// The whole request once its end arrives, nil before.
    mutating func add(_ part: HTTPServerRequestPart) -> (head: HTTPRequestHead, body: ByteBuffer)? {
        switch part {
        case .head(let head):
            self.head = head
            self.body.clear()
        case .body(var piece):
            self.body.writeBuffer(&piece)
        case .end:
            return self.head.map { ($0, self.body) }
        }
        return nil
    }
}
