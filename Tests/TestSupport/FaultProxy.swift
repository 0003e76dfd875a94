import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP relay on loopback that injects the faults a network does: it forwards bytes both ways
/// until told to stall (keep the sockets open, pass nothing), drop (close every connection and
/// refuse new ones) or half-close (end the upstream's bytes to the client, keep the socket).
///
/// ```swift
/// let proxy = try await FaultProxy.start(to: "127.0.0.1", port: pbxPort)
/// proxy.stall()   // AMI goes silent, TCP stays up
/// proxy.resume()
/// ```
public final class FaultProxy: Sendable {
    public enum Mode: Sendable, Equatable {
        case pass
        case stall
        case refuse
    }

    private struct State {
        var mode: Mode = .pass
        var connections: [ObjectIdentifier: Pair] = [:]
        var accepted = 0
    }

    /// One proxied connection: both channels share an event loop, where the relays live.
    private struct Pair {
        var client: any Channel
        var upstream: any Channel
        var relays: [Relay]
    }

    private let state = NIOLockedValueBox(State())
    private let server: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)
    public let targetHost: String
    public let targetPort: Int

    init(targetHost: String, targetPort: Int) {
        self.targetHost = targetHost
        self.targetPort = targetPort
    }

    /// Listens on a free loopback port.
    public static func start(to host: String, port: Int) async throws -> FaultProxy {
        let proxy = FaultProxy(targetHost: host, targetPort: port)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { client in client.pipeline.addHandler(Acceptor(proxy: proxy)) }
            .bind(host: "127.0.0.1", port: 0).get()
        proxy.server.withLockedValue { $0 = server }
        return proxy
    }

    public var port: Int { self.server.withLockedValue { $0?.localAddress?.port ?? 0 } }
    public var mode: Mode { self.state.withLockedValue { $0.mode } }
    /// Connections accepted so far.
    public var accepted: Int { self.state.withLockedValue { $0.accepted } }

    /// Passes nothing either way, holding what arrives; the sockets stay open (a stalled PBX,
    /// a black-holed route).
    public func stall() { self.state.withLockedValue { $0.mode = .stall } }

    /// Closes every connection and refuses new ones until `resume()`.
    public func drop() {
        let open = self.state.withLockedValue { state in
            state.mode = .refuse
            defer { state.connections.removeAll() }
            return Array(state.connections.values)
        }
        for pair in open {
            pair.client.close(promise: nil)
            pair.upstream.close(promise: nil)
        }
    }

    /// Forwards again; what was held during a stall flows on.
    public func resume() {
        let open = self.state.withLockedValue { state in
            state.mode = .pass
            return Array(state.connections.values)
        }
        for pair in open {
            pair.client.eventLoop.execute {
                for relay in pair.relays { relay.flushHeld() }
            }
        }
    }

    public func close() async throws {
        self.drop()
        try await self.server.withLockedValue { $0 }?.close()
    }

    fileprivate var passing: Bool { self.state.withLockedValue { $0.mode == .pass } }

    fileprivate func forget(_ key: ObjectIdentifier) {
        let pair = self.state.withLockedValue { $0.connections.removeValue(forKey: key) }
        pair?.client.close(promise: nil)
        pair?.upstream.close(promise: nil)
    }

    /// On a new client connection: connects upstream (refusing when dropped), then relays.
    private final class Acceptor: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let proxy: FaultProxy
        init(proxy: FaultProxy) { self.proxy = proxy }

        func channelActive(context: ChannelHandlerContext) {
            let proxy = self.proxy
            let client = context.channel
            guard proxy.state.withLockedValue({ state in
                state.accepted += 1
                return state.mode != .refuse
            }) else {
                client.close(promise: nil)
                return
            }
            ClientBootstrap(group: client.eventLoop)
                .connect(host: proxy.targetHost, port: proxy.targetPort)
                .whenComplete { result in
                    guard case .success(let upstream) = result else {
                        client.close(promise: nil)
                        return
                    }
                    let key = ObjectIdentifier(client)
                    let toClient = Relay(proxy: proxy, peer: client, key: key)
                    let toUpstream = Relay(proxy: proxy, peer: upstream, key: key)
                    proxy.state.withLockedValue { $0.connections[key] = Pair(client: client, upstream: upstream, relays: [toClient, toUpstream]) }
                    do {
                        try upstream.pipeline.syncOperations.addHandler(toClient)
                        try client.pipeline.syncOperations.addHandler(toUpstream)
                    } catch {
                        proxy.forget(key)
                        return
                    }
                    client.setOption(.autoRead, value: true).whenFailure { _ in proxy.forget(key) }
                }
        }
    }

    /// Writes what one side reads to the other; holds it while the proxy stalls. Touched on its
    /// channel's event loop only (the peer shares it).
    private final class Relay: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let proxy: FaultProxy
        let peer: any Channel
        let key: ObjectIdentifier
        private var held: [ByteBuffer] = []

        init(proxy: FaultProxy, peer: any Channel, key: ObjectIdentifier) {
            self.proxy = proxy
            self.peer = peer
            self.key = key
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = self.unwrapInboundIn(data)
            if self.proxy.passing, self.held.isEmpty {
                self.peer.writeAndFlush(bytes, promise: nil)
            } else {
                self.held.append(bytes)
            }
        }

        func flushHeld() {
            guard self.proxy.passing else { return }
            for bytes in self.held { self.peer.write(bytes, promise: nil) }
            self.held.removeAll()
            self.peer.flush()
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.proxy.forget(self.key)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
