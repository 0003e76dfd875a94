#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A client of the Asterisk Manager Interface that stays connected.
///
/// `run()` connects, logs in, pings to keep the session alive and reconnects with backoff and
/// jitter when the connection drops. A refused login ends `run()` with
/// `AMIClientError.authenticationFailed`: retrying would only lock the account. Actions sent
/// while disconnected fail at once with `.notConnected`; actions waiting when the connection
/// drops fail with `.connectionLost`; no action waits longer than `responseTimeout`.
///
/// ```swift
/// let client = AMIClient(configuration: .init(host: "127.0.0.1", username: "cex", secret: secret))
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { try await client.run() }
///     for await event in client.subscribe() { … }
/// }
/// ```
public final class AMIClient: Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var username: String
        /// Never logged, never part of an error.
        public var secret: String
        public var authentication: AMIConnectionStateMachine.Authentication
        /// The session's event mask; nil keeps Asterisk's default (all classes the user may read).
        public var events: EventMask?
        /// How often to Ping; a Ping unanswered by the next one drops the connection. Zero turns it off.
        public var keepaliveInterval: Duration
        public var responseTimeout: Duration
        public var connectTimeout: Duration
        /// From the TCP connection to an accepted login (banner included).
        public var loginTimeout: Duration
        /// How long `run()` keeps trying without a login before it gives up with
        /// `AMIClientError.unavailable`; nil: forever.
        public var giveUpAfter: Duration?
        public var backoff: ReconnectBackoff

        public init(
            host: String,
            port: Int = 5038,
            username: String,
            secret: String,
            authentication: AMIConnectionStateMachine.Authentication = .plain,
            events: EventMask? = .classes(["call", "dialplan", "user", "system"]),
            keepaliveInterval: Duration = .seconds(20),
            responseTimeout: Duration = .seconds(10),
            connectTimeout: Duration = .seconds(5),
            loginTimeout: Duration = .seconds(10),
            giveUpAfter: Duration? = nil,
            backoff: ReconnectBackoff = ReconnectBackoff()
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.secret = secret
            self.authentication = authentication
            self.events = events
            self.keepaliveInterval = keepaliveInterval
            self.responseTimeout = responseTimeout
            self.connectTimeout = connectTimeout
            self.loginTimeout = loginTimeout
            self.giveUpAfter = giveUpAfter
            self.backoff = backoff
        }
    }

    /// What subscribers see: the connection coming and going, and Asterisk's events.
    public enum Event: Sendable, Hashable {
        /// Logged in; actions may be sent.
        case connected
        /// The connection dropped (or could not be made); the client is reconnecting.
        case disconnected(AMIClientError)
        case event(AMIEvent)
    }

    private struct Shared {
        var channel: (any Channel)?
        var subscribers: [Int: AsyncStream<Event>.Continuation] = [:]
        var nextSubscriber = 0
        var finished = false
    }

    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let shared = NIOLockedValueBox(Shared())

    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "cex.ami")
    ) {
        self.configuration = configuration
        self.group = eventLoopGroup
        var logger = logger
        logger[metadataKey: "ami.server"] = "\(configuration.host):\(configuration.port)"
        self.logger = logger
    }

    /// Whether the client is logged in right now.
    public var isConnected: Bool {
        self.shared.withLockedValue { $0.channel != nil }
    }

    /// A stream of connection changes and events from now on. A subscriber that joins while
    /// the client is logged in first receives `.connected`. The stream ends when `run()` returns.
    public func subscribe() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        let id: Int? = self.shared.withLockedValue { shared in
            guard !shared.finished else { return nil }
            let id = shared.nextSubscriber
            shared.nextSubscriber += 1
            shared.subscribers[id] = continuation
            if shared.channel != nil { continuation.yield(.connected) }
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.shared.withLockedValue { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Sends an action and waits for its reply (for list actions, the whole list).
    public func send(_ action: AMIAction) async throws -> AMIResponse {
        guard let channel = self.shared.withLockedValue({ $0.channel }) else {
            throw AMIClientError.notConnected
        }
        let promise = channel.eventLoop.makePromise(of: AMIResponse.self)
        channel.writeAndFlush(AMIRequest(action: action, promise: promise)).whenFailure { _ in
            promise.fail(AMIClientError.connectionLost)
        }
        return try await promise.futureResult.get()
    }

    public func run() async throws {
        defer { self.finishSubscribers() }
        var attempt = 0
        // Since when the client has been without a login.
        var downSince = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let reason: AMIClientError
            do {
                reason = try await self.connectAndServe(onLogin: { attempt = 0 })
                downSince = .now
            } catch let error as AMIClientError where error.isFinal {
                self.logger.error("AMI login refused; not retrying", metadata: ["error": "\(error)"])
                throw error
            } catch {
                reason = error as? AMIClientError ?? .connectFailed("\(error)")
            }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            self.broadcast(.disconnected(reason))
            var wait = self.configuration.backoff.delay(attempt: attempt, unitRandom: Double.random(in: 0...1))
            if let limit = self.configuration.giveUpAfter {
                let left = limit - (ContinuousClock.now - downSince)
                guard left > .zero else {
                    let error = AMIClientError.unavailable(after: "\(limit.components.seconds) s", last: reason)
                    self.logger.error("AMI unreachable; giving up", metadata: ["error": "\(error)"])
                    throw error
                }
                wait = min(wait, left)
            }
            let delay = wait
            attempt += 1
            self.logger.warning(
                "AMI connection down; reconnecting",
                metadata: ["error": "\(reason)", "ami.retry_in": "\(delay)"]
            )
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } catch {
                break
            }
        }
    }

    /// One connection from connect to close; returns why it closed.
    private func connectAndServe(onLogin: () -> Void) async throws -> AMIClientError {
        let loop = self.group.next()
        let loggedIn = loop.makePromise(of: Void.self)
        let closed = loop.makePromise(of: AMIClientError?.self)
        let machineConfiguration = AMIConnectionStateMachine.Configuration(
            username: self.configuration.username,
            secret: self.configuration.secret,
            authentication: self.configuration.authentication,
            events: self.configuration.events
        )
        let keepalive = TimeAmount(self.configuration.keepaliveInterval)
        let responseTimeout = TimeAmount(self.configuration.responseTimeout)
        let loginTimeout = TimeAmount(self.configuration.loginTimeout)
        let logger = self.logger
        let deliver: @Sendable (AMIEvent) -> Void = { [weak self] event in self?.broadcast(.event(event)) }

        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(TimeAmount(self.configuration.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([
                            ByteToMessageHandler(AMIDecoder(role: .client)),
                            MessageToByteHandler(AMIEncoder()),
                            AMIConnectionHandler(
                                configuration: machineConfiguration,
                                keepaliveInterval: keepalive,
                                responseTimeout: responseTimeout,
                                loginTimeout: loginTimeout,
                                loggedIn: loggedIn,
                                closed: closed,
                                logger: logger,
                                deliver: deliver
                            ),
                        ])
                    }
                }
                .connect(host: self.configuration.host, port: self.configuration.port)
                .get()
        } catch {
            loggedIn.fail(error)
            closed.succeed(nil)
            throw AMIClientError.connectFailed(Self.reason(error))
        }

        return try await withTaskCancellationHandler {
            try await loggedIn.futureResult.get()
            onLogin()
            self.shared.withLockedValue { $0.channel = channel }
            self.logger.info("AMI logged in", metadata: ["ami.user": "\(self.configuration.username)"])
            self.broadcast(.connected)
            let reason = await withGracefulShutdownHandler {
                (try? await closed.futureResult.get()) ?? nil
            } onGracefulShutdown: {
                channel.triggerUserOutboundEvent(AMILogoffRequest(), promise: nil)
            }
            self.shared.withLockedValue { $0.channel = nil }
            return reason ?? .connectionLost
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Why a TCP connect failed, in words (NIO's error values name their types, not the cause).
    static func reason(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                return "cannot resolve \(error.host)"
            }
            if let first = error.connectionErrors.first { return Self.reason(first.error) }
        }
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if let error = error as? ChannelError, case .connectTimeout(let time) = error {
            return "no answer within \(time.nanoseconds / 1_000_000) ms"
        }
        return "\(error)"
    }

    private func broadcast(_ event: Event) {
        self.shared.withLockedValue { shared in
            for continuation in shared.subscribers.values {
                continuation.yield(event)
            }
        }
    }

    private func finishSubscribers() {
        let continuations = self.shared.withLockedValue { shared in
            shared.finished = true
            shared.channel = nil
            defer { shared.subscribers.removeAll() }
            return Array(shared.subscribers.values)
        }
        for continuation in continuations {
            continuation.finish()
        }
    }
}
