import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// 16-bit PCM that arrived from Asterisk.
public struct PCMAudio: Sendable, Hashable {
    public var sampleRate: Int
    public var samples: [Int16]

    public init(sampleRate: Int, samples: [Int16]) {
        self.sampleRate = sampleRate
        self.samples = samples
    }
}

/// What the caller's side sends during a call.
public enum AudioSocketInbound: Sendable, Hashable {
    case audio(PCMAudio)
    case dtmf(Character)
}

/// One answered call as the engine sees it: its id, what the caller sends, and the paced
/// outbound writer. The inbound stream ends when the call ends (caller hang-up, protocol
/// error or our own hang-up). When the engine falls behind, the oldest inbound audio is
/// dropped rather than the connection stalled.
public struct AudioSocketSession: Sendable {
    public let callID: UUID
    public let inbound: AsyncStream<AudioSocketInbound>
    public let outbound: OutboundAudio
    /// The call's event loop, which reads and writes its audio, as a task executor: the call's
    /// own tasks run there, beside its audio, when they never block.
    public let executor: EventLoopTaskExecutor
    /// Why the call ended, once it has: nil for a hang-up, else the protocol error.
    public var endReason: AudioSocketError? { self.ending.withLockedValue { $0 } }
    let ending: NIOLockedValueBox<AudioSocketError?>
}

/// What the AudioSocket server asks of the engine that hosts it.
public protocol AudioSocketApplication: Sendable {
    /// What the application knows about an admitted call (attempt, lead, template…).
    associatedtype Call: Sendable

    /// Decides whether `callID` is a call we placed; nil hangs the connection up at once.
    func admit(callID: UUID) async -> Call?

    /// Runs one admitted call until it ends. Returning hangs up gracefully if the call is
    /// still up; a thrown error ends only this call.
    func handle(_ session: AudioSocketSession, call: Call) async throws
}

/// The AudioSocket TCP server (Asterisk connects to us), a `Service`.
///
/// Each connection must send its UUID frame first, within `uuidTimeout`; the application's
/// `admit` decides whether it is one of our calls. One bad connection never affects the others.
public struct AudioSocketServer<Application: AudioSocketApplication>: Service {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// How long a new connection has to send its UUID frame.
        public var uuidTimeout: TimeAmount
        /// Outbound audio that may wait ahead of real time (default 60 ms).
        public var outboundCapacity: Int
        /// Inbound frames kept when the engine falls behind (default 1 s).
        public var inboundBufferFrames: Int
        /// A frame later than this after its slot counts as late.
        public var lateTolerance: TimeAmount
        /// Called once the socket is bound, with its address (useful with port 0).
        public var onListening: (@Sendable (SocketAddress) -> Void)?
        /// Told after every 20 ms slot, per event loop, how late its last frame was written.
        public var onFrameLateness: (@Sendable (TimeAmount) -> Void)?
        /// Calls served at once; a connection beyond it gets a hang-up frame as soon as its UUID
        /// arrives, before the application sees it. nil: no limit.
        public var maximumCalls: Int?
        /// Told of each connection refused at the limit.
        public var onRefusedAtLimit: (@Sendable () -> Void)?

        public init(
            host: String = "127.0.0.1",
            port: Int = 9092,
            uuidTimeout: TimeAmount = .seconds(2),
            outboundCapacity: Int = 3 * OutboundAudioQueue.frameBytes,
            inboundBufferFrames: Int = 50,
            lateTolerance: TimeAmount = .milliseconds(10),
            onListening: (@Sendable (SocketAddress) -> Void)? = nil,
            onFrameLateness: (@Sendable (TimeAmount) -> Void)? = nil
        ) {
            self.host = host
            self.port = port
            self.uuidTimeout = uuidTimeout
            self.outboundCapacity = outboundCapacity
            self.inboundBufferFrames = inboundBufferFrames
            self.lateTolerance = lateTolerance
            self.onListening = onListening
            self.onFrameLateness = onFrameLateness
        }
    }

    public let configuration: Configuration
    public let application: Application
    private let group: any EventLoopGroup
    private let logger: Logger
    private let pacers = FramePacerRegistry()
    /// Connections holding a place under `maximumCalls` (UUID received, not closed yet).
    private let seats = NIOLockedValueBox(0)

    public init(
        configuration: Configuration,
        application: Application,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "cex.audiosocket")
    ) {
        self.configuration = configuration
        self.application = application
        self.group = eventLoopGroup
        self.logger = logger
    }

    public func run() async throws {
        let configuration = self.configuration
        let server = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let (stream, continuation) = AsyncStream.makeStream(
                        of: AudioSocketInbound.self,
                        bufferingPolicy: .bufferingNewest(configuration.inboundBufferFrames)
                    )
                    let ending = NIOLockedValueBox<AudioSocketError?>(nil)
                    let uuid = channel.eventLoop.makePromise(of: UUID.self)
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(AudioSocketFrameDecoder()),
                        AudioSocketConnectionHandler(
                            uuidTimeout: configuration.uuidTimeout,
                            uuid: uuid,
                            inbound: continuation,
                            ending: ending
                        ),
                    ])
                    return AcceptedConnection(channel: channel, uuid: uuid.futureResult, inbound: stream, ending: ending)
                }
            }
        if let address = server.channel.localAddress {
            self.logger.info("AudioSocket server listening", metadata: ["audiosocket.address": "\(address)"])
            configuration.onListening?(address)
        }

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    /// Sends the hang-up frame, then closes.
    private static func hangUp(_ connection: AcceptedConnection) {
        var buffer = connection.channel.allocator.buffer(capacity: 3)
        AudioSocketFrame.hangup.encode(into: &buffer)
        connection.channel.writeAndFlush(buffer).whenComplete { _ in connection.channel.close(promise: nil) }
    }

    /// Runs one connection to its end; never throws.
    private func serve(_ connection: AcceptedConnection) async {
        var logger = self.logger
        guard let callID = try? await connection.uuid.get() else {
            // The handler already closed the connection (timeout, wrong first frame, hang-up).
            if let reason = connection.ending.withLockedValue({ $0 }) {
                logger.warning("AudioSocket connection refused", metadata: ["error": "\(reason)"])
            }
            connection.channel.close(promise: nil)
            return
        }
        logger[metadataKey: "call.id"] = "\(callID)"

        let limit = self.configuration.maximumCalls
        let seated = self.seats.withLockedValue { seats in
            guard limit.map({ seats < $0 }) ?? true else { return false }
            seats += 1
            return true
        }
        guard seated else {
            logger.warning("AudioSocket call refused: the engine is at its call limit; hanging up", metadata: ["engine.max_calls": "\(limit ?? 0)"])
            self.configuration.onRefusedAtLimit?()
            Self.hangUp(connection)
            return
        }
        defer { self.seats.withLockedValue { $0 -= 1 } }

        guard let call = await self.application.admit(callID: callID) else {
            logger.warning("AudioSocket call refused: unknown UUID; hanging up")
            connection.ending.withLockedValue { $0 = .unknownCall }
            Self.hangUp(connection)
            return
        }

        let pacer = self.pacers.pacer(
            for: connection.channel.eventLoop, lateTolerance: self.configuration.lateTolerance, onLateness: self.configuration.onFrameLateness
        )
        let outbound = OutboundAudio(channel: connection.channel, capacity: self.configuration.outboundCapacity)
        let registered = connection.channel.eventLoop.submit { pacer.register(outbound) }
        connection.channel.closeFuture.whenComplete { _ in
            outbound.closed()
            pacer.unregister(outbound)
        }
        do {
            try await registered.get()
        } catch {
            connection.channel.close(promise: nil)
            return
        }

        let session = AudioSocketSession(
            callID: callID,
            inbound: connection.inbound,
            outbound: outbound,
            executor: EventLoopTaskExecutor(connection.channel.eventLoop),
            ending: connection.ending
        )
        logger.info("AudioSocket call connected")
        do {
            try await self.application.handle(session, call: call)
            await outbound.hangup()
        } catch {
            logger.warning("AudioSocket call failed", metadata: ["error": "\(error)"])
            connection.channel.close(promise: nil)
        }
        try? await connection.channel.closeFuture.get()
        let statistics = outbound.statistics
        logger.info(
            "AudioSocket call ended",
            metadata: [
                "audiosocket.frames_sent": "\(statistics.framesSent)",
                "audiosocket.underruns": "\(statistics.underruns)",
                "audiosocket.late_frames": "\(statistics.lateFrames)",
            ]
        )
    }
}

/// A connection accepted by the server, before its UUID is known.
struct AcceptedConnection: Sendable {
    let channel: any Channel
    let uuid: EventLoopFuture<UUID>
    let inbound: AsyncStream<AudioSocketInbound>
    let ending: NIOLockedValueBox<AudioSocketError?>
}

/// One `FramePacer` per event loop.
final class FramePacerRegistry: Sendable {
    private let pacers = NIOLockedValueBox<[ObjectIdentifier: FramePacer]>([:])

    func pacer(for eventLoop: any EventLoop, lateTolerance: TimeAmount, onLateness: (@Sendable (TimeAmount) -> Void)?) -> FramePacer {
        self.pacers.withLockedValue { pacers in
            let key = ObjectIdentifier(eventLoop)
            if let pacer = pacers[key] { return pacer }
            let pacer = FramePacer(eventLoop: eventLoop, lateTolerance: lateTolerance, onLateness: onLateness)
            pacers[key] = pacer
            return pacer
        }
    }
}

/// Per-connection protocol rules: UUID first and in time; frames to the inbound stream;
/// a protocol error or Asterisk's hang-up ends the stream and the connection.
final class AudioSocketConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = AudioSocketFrame

    private let uuidTimeout: TimeAmount
    private let uuid: EventLoopPromise<UUID>
    private let inbound: AsyncStream<AudioSocketInbound>.Continuation
    private let ending: NIOLockedValueBox<AudioSocketError?>
    private var sawUUID = false
    private var timeout: Scheduled<Void>?

    init(
        uuidTimeout: TimeAmount,
        uuid: EventLoopPromise<UUID>,
        inbound: AsyncStream<AudioSocketInbound>.Continuation,
        ending: NIOLockedValueBox<AudioSocketError?>
    ) {
        self.uuidTimeout = uuidTimeout
        self.uuid = uuid
        self.inbound = inbound
        self.ending = ending
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let ending = self.ending
        self.timeout = context.eventLoop.scheduleTask(in: self.uuidTimeout) {
            ending.withLockedValue { $0 = $0 ?? .uuidTimeout }
            contextBound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard self.sawUUID else {
            guard case .uuid(let uuid) = frame else {
                self.fail(.uuidNotFirst, context: context)
                return
            }
            self.sawUUID = true
            self.timeout?.cancel()
            self.uuid.succeed(uuid)
            return
        }
        switch frame {
        case .audio(let format, let payload):
            self.inbound.yield(.audio(PCMAudio(sampleRate: format.sampleRate, samples: payload.pcmSamples())))
        case .dtmf(let digit):
            self.inbound.yield(.dtmf(digit))
        case .hangup, .error:
            context.close(promise: nil)
        case .uuid:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? AudioSocketError {
            self.fail(error, context: context)
        } else {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timeout?.cancel()
        if !self.sawUUID {
            self.sawUUID = true
            self.uuid.fail(self.ending.withLockedValue { $0 } ?? AudioSocketError.uuidTimeout)
        }
        self.inbound.finish()
        context.fireChannelInactive()
    }

    private func fail(_ error: AudioSocketError, context: ChannelHandlerContext) {
        self.ending.withLockedValue { $0 = $0 ?? error }
        context.close(promise: nil)
    }
}
