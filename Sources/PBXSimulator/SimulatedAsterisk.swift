import AsteriskManager
import AudioSocket
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The built-in Asterisk stand-in: an AMI server and, for answered calls, the Asterisk side of
/// AudioSocket. Built from cex's own codecs run in reverse, faithful to PROTOCOLS.md §1.8 and §2.5.
///
/// Each Originate plays the behaviour the directory gives its number: answered calls connect to
/// the engine with the call's UUID and follow a caller script; the others produce the events,
/// DialStatus, Hangup Cause/TechCause and OriginateResponse Reason that Asterisk gives, in its
/// Local-channel or PJSIP flavour depending on the dialled technology.
public final class SimulatedAsterisk: Service, Sendable {
    public static let banner = "Asterisk Call Manager/11.0.0"

    struct Session {
        let channel: any Channel
        var user: User?
        /// nil: every class the user may read.
        var mask: Set<String>?
        var challenge: String?
    }

    struct LiveCall {
        var channelName: String
        var state: ChannelState
        var hangup: HangupSignal
    }

    struct State {
        var sessions: [ObjectIdentifier: Session] = [:]
        var live: [String: LiveCall] = [:]
        var counter = 0
        var random: SplitMix64
        var reports: [CallReport] = []
        /// When this PBX started, as CoreStatus reports it.
        var startup = Date()
        var reportSubscribers: [Int: AsyncStream<CallReport>.Continuation] = [:]
        var nextSubscriber = 0
    }

    public let configuration: Configuration
    let group: any EventLoopGroup
    let logger: Logger
    let state: NIOLockedValueBox<State>
    private let jobs: (stream: AsyncStream<@Sendable () async -> Void>, continuation: AsyncStream<@Sendable () async -> Void>.Continuation)

    public init(
        configuration: Configuration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "cex.pbx")
    ) {
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.state = NIOLockedValueBox(State(random: SplitMix64(state: configuration.seed ?? UInt64.random(in: 0...UInt64.max))))
        self.jobs = AsyncStream.makeStream()
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(AMIDecoder(role: .server)),
                        AMIServerSessionHandler(pbx: self),
                    ])
                }
            }
            .bind(host: self.configuration.host, port: self.configuration.port)
            .get()
        if let address = server.localAddress {
            self.logger.info("simulated Asterisk listening", metadata: ["ami.address": "\(address)"])
            self.configuration.onListening?(address)
        }
        let stop: @Sendable () -> Void = {
            server.close(promise: nil)
            self.jobs.continuation.finish()
            self.dropConnections()
            self.hangupAll()
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    for await job in self.jobs.stream {
                        group.addTask { await job() }
                    }
                }
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
        try? await server.closeFuture.get()
        self.state.withLockedValue { state in
            for subscriber in state.reportSubscribers.values { subscriber.finish() }
            state.reportSubscribers.removeAll()
        }
    }

    /// The number in a dial string, as the directory is keyed: between the technology's `/` and the `@`.
    public static func destination(ofChannel channel: String) -> String {
        let afterSlash = channel.split(separator: "/", maxSplits: 1).last.map(String.init) ?? channel
        return afterSlash.split(separator: "@", maxSplits: 1).first.map(String.init) ?? afterSlash
    }

    // MARK: - Controls for tests and the demo

    /// Closes every AMI connection at once, as a restarting Asterisk would.
    public func dropConnections() {
        let channels = self.state.withLockedValue { $0.sessions.values.map(\.channel) }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Hangs up a live call from the far end.
    public func hangup(uniqueID: String) {
        let call = self.state.withLockedValue { $0.live[uniqueID] }
        call?.hangup.fire()
    }

    private func hangupAll() {
        let calls = self.state.withLockedValue { Array($0.live.values) }
        for call in calls { call.hangup.fire() }
    }

    /// Calls finished so far.
    public var reports: [CallReport] { self.state.withLockedValue { $0.reports } }

    /// Calls as they finish, from now on.
    public func callReports() -> AsyncStream<CallReport> {
        let (stream, continuation) = AsyncStream.makeStream(of: CallReport.self)
        let id = self.state.withLockedValue { state in
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.reportSubscribers[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLockedValue { _ = $0.reportSubscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// The number of AMI sessions open.
    public var sessionCount: Int { self.state.withLockedValue { $0.sessions.count } }

    // MARK: - Sessions

    func sessionOpened(_ channel: any Channel) {
        self.state.withLockedValue { $0.sessions[ObjectIdentifier(channel)] = Session(channel: channel) }
        var buffer = channel.allocator.buffer(capacity: 32)
        buffer.writeString(Self.banner + "\r\n")
        channel.writeAndFlush(buffer, promise: nil)
    }

    func sessionClosed(_ channel: any Channel) {
        _ = self.state.withLockedValue { $0.sessions.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func send(_ message: AMIMessage, to channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: 256)
        do {
            try AMIEncoder.write(message, into: &buffer)
            channel.writeAndFlush(buffer, promise: nil)
        } catch {
            self.logger.error("simulated Asterisk could not encode a packet", metadata: ["error": "\(error)"])
        }
    }

    /// Sends an event of `eventClass` to every session whose `read=` and event mask allow it.
    func emit(_ eventClass: String, _ name: String, _ fields: [(String, String)]) {
        let message = AMIMessage([("Event", name), ("Privilege", "\(eventClass),all")] + fields)
        var encoded = ByteBuffer()
        guard (try? AMIEncoder.write(message, into: &encoded)) != nil else { return }
        let channels = self.state.withLockedValue { state in
            state.sessions.values.compactMap { session -> (any Channel)? in
                guard let user = session.user, user.read.contains(eventClass) else { return nil }
                if let mask = session.mask, !mask.contains(eventClass) { return nil }
                return session.channel
            }
        }
        for channel in channels { channel.writeAndFlush(encoded, promise: nil) }
    }

    func response(_ status: String, _ request: AMIMessage, message: String? = nil, _ extra: [(String, String)] = []) -> AMIMessage {
        var headers = [("Response", status)]
        if let id = request["ActionID"] { headers.append(("ActionID", id)) }
        headers += extra
        if let message { headers.append(("Message", message)) }
        return AMIMessage(headers)
    }

    func session(_ channel: any Channel) -> Session? {
        self.state.withLockedValue { $0.sessions[ObjectIdentifier(channel)] }
    }

    func updateSession(_ channel: any Channel, _ body: @Sendable (inout Session) -> Void) {
        self.state.withLockedValue { state in
            if var session = state.sessions[ObjectIdentifier(channel)] {
                body(&session)
                state.sessions[ObjectIdentifier(channel)] = session
            }
        }
    }

    /// Handles one action packet from a client (main/manager.c `process_message`).
    func handle(_ request: AMIMessage, from channel: any Channel) {
        guard let action = request["Action"], !action.isEmpty else {
            self.send(self.response("Error", request, message: "Missing action in request"), to: channel)
            return
        }
        let name = action.lowercased()
        let user = self.session(channel)?.user
        if user == nil && !["login", "logoff", "challenge"].contains(name) {
            self.send(self.response("Error", request, message: "Permission denied"), to: channel)
            return
        }
        switch name {
        case "login": self.login(request, from: channel)
        case "challenge": self.challenge(request, from: channel)
        case "logoff":
            self.send(self.response("Goodbye", request, message: "Thanks for all the fish."), to: channel)
            channel.close(promise: nil)
        case "ping":
            let timestamp = String(format: "%.6f", Date().timeIntervalSince1970)
            self.send(self.response("Success", request, [("Ping", "Pong"), ("Timestamp", timestamp)]), to: channel)
        case "events":
            let mask = Self.parseMask(request["EventMask"])
            self.updateSession(channel) { $0.mask = mask }
            self.send(self.response("Success", request, [("Events", mask == [] ? "Off" : "On")]), to: channel)
        case "originate":
            guard user?.write.contains("originate") == true else {
                self.send(self.response("Error", request, message: "Permission denied"), to: channel)
                return
            }
            self.originate(request, from: channel, user: user!)
        case "hangup": self.hangupAction(request, from: channel)
        case "status": self.listChannels(request, from: channel, item: "Status", complete: "StatusComplete", message: "Channel status will follow")
        case "corestatus":
            let startup = self.state.withLockedValue { $0.startup }
            let day = Date.ISO8601FormatStyle(timeZone: .gmt).year().month().day().format(startup)
            let time = Date.ISO8601FormatStyle(timeZone: .gmt).time(includingFractionalSeconds: true).format(startup)
            self.send(
                self.response("Success", request, [("CoreStartupDate", day), ("CoreStartupTime", time), ("CoreCurrentCalls", "0")]), to: channel)
        case "coreshowchannels":
            self.listChannels(request, from: channel, item: "CoreShowChannel", complete: "CoreShowChannelsComplete", message: "Channels will follow")
        default:
            self.send(
                self.response("Error", request, message: "Invalid/unknown command: \(action). Use Action: ListCommands to show available commands."),
                to: channel
            )
        }
    }

    /// `strings_to_mask`: nil for all, an empty set for none.
    static func parseMask(_ value: String?) -> Set<String>? {
        guard let value = value?.trimmingCharacters(in: .whitespaces).lowercased(), !value.isEmpty else { return nil }
        if ["off", "no", "false"].contains(value) { return [] }
        if ["on", "yes", "true"].contains(value) { return nil }
        if let number = Int(value) { return number == 0 ? [] : nil }
        return Set(value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    private func login(_ request: AMIMessage, from channel: any Channel) {
        let username = request["Username"] ?? ""
        let candidate = self.configuration.users.first { $0.username == username }
        let session = self.session(channel)
        let accepted: Bool
        if request["AuthType"]?.lowercased() == "md5" {
            if let candidate, let challenge = session?.challenge, let key = request["Key"] {
                accepted = key.lowercased() == AMIAction.md5Key(challenge: challenge, secret: candidate.secret)
            } else {
                accepted = false
            }
        } else {
            accepted = candidate != nil && request["Secret"] == candidate?.secret
        }
        guard accepted, let user = candidate else {
            let response = self.response("Error", request, message: "Authentication failed")
            let delay = TimeAmount(self.configuration.authenticationFailureDelay)
            channel.eventLoop.scheduleTask(in: delay) {
                self.send(response, to: channel)
                channel.close(promise: nil)
            }
            return
        }
        let mask = request.contains("Events") ? Self.parseMask(request["Events"]) : nil
        self.updateSession(channel) { session in
            session.user = user
            session.mask = mask
        }
        self.send(self.response("Success", request, message: "Authentication accepted"), to: channel)
        if user.read.contains("system") && (mask == nil || mask!.contains("system")) {
            self.send(AMIMessage([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "1"), ("LastReload", "1"), ("Status", "Fully Booted")]), to: channel)
        }
    }

    private func challenge(_ request: AMIMessage, from channel: any Channel) {
        guard request["AuthType"]?.lowercased() == "md5" else {
            self.send(self.response("Error", request, message: "Must specify AuthType"), to: channel)
            return
        }
        let challenge = String(self.state.withLockedValue { UInt32.random(in: 1...UInt32.max, using: &$0.random) })
        self.updateSession(channel) { $0.challenge = challenge }
        self.send(self.response("Success", request, [("Challenge", challenge)]), to: channel)
    }

    private func hangupAction(_ request: AMIMessage, from channel: any Channel) {
        let name = request["Channel"] ?? ""
        let call = self.state.withLockedValue { state in state.live.values.first { $0.channelName == name } }
        guard let call else {
            self.send(self.response("Error", request, message: "No such channel"), to: channel)
            return
        }
        call.hangup.fire()
        self.send(self.response("Success", request, message: "Channel Hungup"), to: channel)
    }

    private func listChannels(_ request: AMIMessage, from channel: any Channel, item: String, complete: String, message: String) {
        let live = self.state.withLockedValue { state in state.live.sorted { $0.key < $1.key } }
        self.send(self.response("Success", request, message: message, [("EventList", "start")]), to: channel)
        let actionID = request["ActionID"].map { [("ActionID", $0)] } ?? []
        for (uniqueID, call) in live {
            self.send(
                AMIMessage(
                    [("Event", item), ("Privilege", "call,all")] + actionID + [
                        ("Channel", call.channelName), ("ChannelState", String(call.state.rawValue)),
                        ("ChannelStateDesc", call.state == .up ? "Up" : "Ringing"), ("Uniqueid", uniqueID), ("Linkedid", uniqueID),
                    ]
                ),
                to: channel
            )
        }
        self.send(
            AMIMessage([("Event", complete), ("Privilege", "call,all")] + actionID + [("EventList", "Complete"), ("ListItems", String(live.count))]),
            to: channel
        )
    }

    // MARK: - Originate

    static let blacklistedApplications: Set<String> = ["system", "exec", "trysystem", "agi", "eagi", "mixmonitor", "externalivr"]

    private func originate(_ request: AMIMessage, from channel: any Channel, user: User) {
        func fail(_ message: String) { self.send(self.response("Error", request, message: message), to: channel) }
        guard let dialled = request["Channel"], !dialled.isEmpty else { return fail("Channel not specified") }
        guard dialled.contains("/") else { return fail("Invalid channel") }
        var timeout = 30_000
        if let value = request["Timeout"] {
            guard let parsed = Int(value), parsed > 0 else { return fail("Invalid timeout") }
            timeout = parsed
        }
        let application = request["Application"].flatMap { $0.isEmpty ? nil : $0 }
        var target: DialplanTarget
        if let application {
            if Self.blacklistedApplications.contains(application.lowercased()) && !user.write.contains("system") {
                return fail("Originate Access Forbidden: app or data blacklisted")
            }
            target = .application(application, request["Data"] ?? "")
        } else {
            guard let exten = request["Exten"], let context = request["Context"], !context.isEmpty else {
                return fail("Originate with 'Exten' requires 'Context' and 'Priority'")
            }
            guard let priority = request["Priority"], !priority.isEmpty else { return fail("Invalid priority") }
            guard self.configuration.contexts[context] != nil else { return fail("Extension does not exist.") }
            target = .dialplan(context: context, exten: exten, priority: priority)
        }
        var variables: [(String, String)] = []
        for header in request.values("Variable") {
            for assignment in header.split(separator: ",") {
                let parts = assignment.split(separator: "=", maxSplits: 1)
                variables.append((String(parts[0]), parts.count > 1 ? String(parts[1]) : ""))
            }
        }
        let spec = OriginateSpec(
            dialled: dialled,
            target: target,
            timeout: .milliseconds(timeout),
            callerID: request["CallerID"],
            variables: variables,
            account: request["Account"],
            channelID: request["ChannelId"],
            actionID: request["ActionID"]
        )
        guard request["Async"].map({ ["true", "yes", "1"].contains($0.lowercased()) }) == true else {
            // Without Async Asterisk blocks the session until the dial ends and sends no OriginateResponse.
            self.jobs.continuation.yield {
                let reason = await self.runCall(spec, sendOriginateResponse: false)
                self.send(
                    self.response(reason == 4 ? "Success" : "Error", request, message: reason == 4 ? "Originate successfully queued" : "Originate failed"),
                    to: channel
                )
            }
            return
        }
        self.send(self.response("Success", request, message: "Originate successfully queued"), to: channel)
        self.jobs.continuation.yield { _ = await self.runCall(spec, sendOriginateResponse: true) }
    }
}

/// What an Originate asked for, parsed.
struct OriginateSpec: Sendable {
    var dialled: String
    var target: DialplanTarget
    var timeout: Duration
    var callerID: String?
    var variables: [(String, String)]
    var account: String?
    var channelID: String?
    var actionID: String?

    var destination: String { SimulatedAsterisk.destination(ofChannel: self.dialled) }

    var isLocal: Bool { self.dialled.lowercased().hasPrefix("local/") }

    /// `"Name" <number>` split into its parts.
    var callerIDParts: (name: String, number: String) {
        guard let callerID else { return ("<unknown>", "<unknown>") }
        if let open = callerID.firstIndex(of: "<"), let close = callerID.lastIndex(of: ">"), open < close {
            let name = callerID[..<open].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            let number = String(callerID[callerID.index(after: open)..<close])
            return (name.isEmpty ? "<unknown>" : name, number.isEmpty ? "<unknown>" : number)
        }
        return ("<unknown>", callerID)
    }
}

enum DialplanTarget: Sendable {
    case dialplan(context: String, exten: String, priority: String)
    case application(String, String)
}

/// Feeds one AMI client connection to the simulated Asterisk.
final class AMIServerSessionHandler: ChannelInboundHandler {
    typealias InboundIn = AMIInbound
    let pbx: SimulatedAsterisk

    init(pbx: SimulatedAsterisk) { self.pbx = pbx }

    func channelActive(context: ChannelHandlerContext) {
        self.pbx.sessionOpened(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.pbx.sessionClosed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .message(let message) = self.unwrapInboundIn(data) {
            self.pbx.handle(message, from: context.channel)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.pbx.logger.warning("simulated Asterisk: bad AMI input", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
