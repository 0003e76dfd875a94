import Logging
import NIOCore

/// An action handed to the connection with the promise its reply completes.
struct AMIRequest {
    var action: AMIAction
    var promise: EventLoopPromise<AMIResponse>
}

/// Asks the connection handler to log off and close.
struct AMILogoffRequest {}

/// Runs an `AMIConnectionStateMachine` on a channel: feeds it inbound packets, requests and timers,
/// and carries out the actions it returns. All state is touched on the channel's event loop only.
final class AMIConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = AMIInbound
    typealias OutboundIn = AMIRequest
    typealias OutboundOut = AMIMessage

    private var machine: AMIConnectionStateMachine
    private var waiting: [String: (promise: EventLoopPromise<AMIResponse>, timeout: Scheduled<Void>)] = [:]
    private let loggedIn: EventLoopPromise<Void>
    private let closed: EventLoopPromise<AMIClientError?>
    private let deliver: @Sendable (AMIEvent) -> Void
    private let keepaliveInterval: TimeAmount
    private let responseTimeout: TimeAmount
    private let loginTimeout: TimeAmount
    private let logger: Logger
    private var keepalive: RepeatedTask?
    private var loginDeadline: Scheduled<Void>?
    private var loginSettled = false
    private var closeReason: AMIClientError?

    init(
        configuration: AMIConnectionStateMachine.Configuration,
        keepaliveInterval: TimeAmount,
        responseTimeout: TimeAmount,
        loginTimeout: TimeAmount,
        loggedIn: EventLoopPromise<Void>,
        closed: EventLoopPromise<AMIClientError?>,
        logger: Logger,
        deliver: @escaping @Sendable (AMIEvent) -> Void
    ) {
        self.machine = AMIConnectionStateMachine(configuration: configuration)
        self.keepaliveInterval = keepaliveInterval
        self.responseTimeout = responseTimeout
        self.loginTimeout = loginTimeout
        self.loggedIn = loggedIn
        self.closed = closed
        self.logger = logger
        self.deliver = deliver
    }

    func channelActive(context: ChannelHandlerContext) {
        // The banner and the login have a deadline: a server that accepts and stays silent must
        // not hold the client (keepalive only starts once logged in).
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.loginDeadline = context.eventLoop.scheduleTask(in: self.loginTimeout) {
            let handler = loopBound.value
            handler.run(handler.machine.loginTimedOut(), context: contextBound.value)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .banner(let banner):
            self.logger.debug("AMI banner", metadata: ["ami.banner": "\(banner)"])
            self.run(self.machine.bannerReceived(banner), context: context)
        case .message(let message):
            self.run(self.machine.messageReceived(message), context: context)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = self.unwrapOutboundIn(data)
        let id = request.action.actionID ?? self.machine.makeActionID()
        let action = self.machine.sendRequested(request.action, id: id)
        if case .write = action {
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let timeout = context.eventLoop.scheduleTask(in: self.responseTimeout) {
                let handler = loopBound.value
                handler.run(handler.machine.requestTimedOut(id: id), context: contextBound.value)
            }
            self.waiting[id] = (request.promise, timeout)
            promise?.succeed()
        } else if case .failRequest(_, let error) = action {
            request.promise.fail(error)
            promise?.succeed()
            return
        }
        self.run(action, context: context)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is AMILogoffRequest else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        self.run(self.machine.closeRequested(), context: context)
        // Asterisk closes after Goodbye; do not wait for it forever.
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .seconds(2)) { contextBound.value.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.keepalive?.cancel()
        self.keepalive = nil
        self.loginDeadline?.cancel()
        self.run(self.machine.connectionClosed(), context: context)
        if !self.loginSettled {
            self.loginSettled = true
            self.loggedIn.fail(self.closeReason ?? AMIClientError.connectionLost)
        }
        self.closed.succeed(self.closeReason ?? .connectionLost)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? AMIProtocolError {
            self.closeReason = self.closeReason ?? .protocolViolation(error)
        }
        self.logger.warning("AMI connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    private func run(_ action: AMIConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .write(let message):
            context.writeAndFlush(self.wrapOutboundOut(message), promise: nil)
        case .authenticated:
            self.loginDeadline?.cancel()
            self.loginSettled = true
            self.loggedIn.succeed()
            self.startKeepalive(context: context)
        case .authenticationFailed(let message):
            let error = AMIClientError.authenticationFailed(message)
            self.closeReason = error
            self.loginSettled = true
            self.loggedIn.fail(error)
            context.close(promise: nil)
        case .close(let error):
            if self.closeReason == nil { self.closeReason = error }
            context.close(promise: nil)
        case .succeedRequest(let id, let response):
            if let entry = self.waiting.removeValue(forKey: id) {
                entry.timeout.cancel()
                entry.promise.succeed(response)
            }
        case .failRequest(let id, let error):
            if let entry = self.waiting.removeValue(forKey: id) {
                entry.timeout.cancel()
                entry.promise.fail(error)
            }
        case .failRequests(let ids, let error):
            for id in ids {
                self.run(.failRequest(id: id, error), context: context)
            }
        case .deliverEvent(let event):
            self.deliver(event)
        }
    }

    private func startKeepalive(context: ChannelHandlerContext) {
        guard self.keepaliveInterval > .zero else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.keepalive = context.eventLoop.scheduleRepeatedTask(
            initialDelay: self.keepaliveInterval,
            delay: self.keepaliveInterval
        ) { _ in
            let handler = loopBound.value
            handler.run(handler.machine.keepaliveTick(), context: contextBound.value)
        }
    }
}
