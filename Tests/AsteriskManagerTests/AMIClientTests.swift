import Foundation
import Logging
import NIOCore
import NIOPosix
import PBXSimulator
import TestSupport
import Testing

@testable import AsteriskManager

/// Runs a stand-in Asterisk and an AMI client against it over loopback.
struct AMIHarness {
    static let secret = "s3cret-\(UUID().uuidString)"

    static func run(
        directory: [String: CalleeBehaviour] = [:],
        authentication: AMIConnectionStateMachine.Authentication = .plain,
        secret: String = Self.secret,
        keepalive: Duration = .seconds(20),
        logger: Logger = Logger(label: "test"),
        _ body: @Sendable (AMIClient, SimulatedAsterisk) async throws -> Void
    ) async throws {
        let port = PortWaiter()
        let pbx = SimulatedAsterisk(
            configuration: .init(
                port: 0,
                users: [.init(username: "cex", secret: Self.secret)],
                contexts: ["ai-outbound": .init(engineHost: "127.0.0.1", enginePort: 1)],
                directory: directory,
                ringTime: .milliseconds(20),
                authenticationFailureDelay: .milliseconds(50),
                seed: 1,
                onListening: { port.set($0.port) }
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pbx.run() }
            let client = AMIClient(
                configuration: .init(
                    host: "127.0.0.1",
                    port: try await port.wait(),
                    username: "cex",
                    secret: secret,
                    authentication: authentication,
                    keepaliveInterval: keepalive,
                    backoff: ReconnectBackoff(initial: .milliseconds(20), maximum: .milliseconds(100))
                ),
                logger: logger
            )
            try await body(client, pbx)
            group.cancelAll()
        }
    }

    /// Runs the client until it logs in, then `body`; the client stops when `body` returns.
    static func connected(
        directory: [String: CalleeBehaviour] = [:],
        authentication: AMIConnectionStateMachine.Authentication = .plain,
        keepalive: Duration = .seconds(20),
        logger: Logger = Logger(label: "test"),
        _ body: @Sendable (AMIClient, SimulatedAsterisk, inout AsyncStream<AMIClient.Event>.Iterator) async throws -> Void
    ) async throws {
        try await self.run(directory: directory, authentication: authentication, keepalive: keepalive, logger: logger) { client, pbx in
            let events = client.subscribe()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                var iterator = events.makeAsyncIterator()
                #expect(await next(in: &iterator) { $0 == .connected } == .connected)
                try await body(client, pbx, &iterator)
                group.cancelAll()
            }
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct AMIClientTests {
    @Test func logsInAndPings() async throws {
        try await AMIHarness.connected { client, _, _ in
            let pong = try await client.send(.ping)
            #expect(pong.isSuccess)
            #expect(pong.message["Ping"] == "Pong")
        }
    }

    @Test func logsInWithAnMD5Challenge() async throws {
        try await AMIHarness.connected(authentication: .md5) { client, _, _ in
            let pong = try await client.send(.ping)
            #expect(pong.isSuccess)
        }
    }

    @Test func aRefusedLoginIsFinalAndNotRetried() async throws {
        try await AMIHarness.run(secret: "wrong") { client, pbx in
            await #expect(throws: AMIClientError.authenticationFailed("Authentication failed")) {
                try await client.run()
            }
            #expect(!client.isConnected)
            await #expect(throws: AMIClientError.notConnected) { try await client.send(.ping) }
        }
    }

    @Test func asteriskErrorsComeBackAsResponses() async throws {
        try await AMIHarness.connected { client, _, _ in
            let response = try await client.send(try AMIAction(name: "Frobnicate"))
            #expect(response.status == "Error")
            #expect(response.text?.hasPrefix("Invalid/unknown command: Frobnicate.") == true)
            #expect(throws: AMIClientError.actionFailed(response.text!)) { try response.requireSuccess() }
            let missingExten = try await client.send(
                try AMIAction.originate(Originate(channel: "PJSIP/1@trunk", target: .dialplan(context: "nowhere", exten: "s", priority: "1")))
            )
            #expect(missingExten.text == "Extension does not exist.")
        }
    }

    /// Each scripted destination with the DialStatus, Hangup cause, TechCause and Reason Asterisk gives.
    static let outcomes: [(String, CalleeBehaviour, String, Int, Int?, Int)] = [
        ("PJSIP/+15550000001@trunk", .busy, "BUSY", 17, 486, 0),
        ("Local/15550000002@callees", .busy, "BUSY", 17, nil, 5),
        ("PJSIP/+15550000003@trunk", .congestion, "CONGESTION", 34, 503, 0),
        ("Local/15550000004@callees", .congestion, "CONGESTION", 34, nil, 8),
        ("PJSIP/+15550000005@trunk", .unallocated, "CHANUNAVAIL", 1, 404, 0),
        ("PJSIP/+15550000006@trunk", .rejected, "CHANUNAVAIL", 21, 603, 0),
        ("PJSIP/+15550000007@trunk", .noAnswer, "NOANSWER", 19, nil, 3),
    ]

    @Test(arguments: Self.outcomes)
    func originateReportsEachOutcome(
        outcome: (channel: String, behaviour: CalleeBehaviour, dialStatus: String, cause: Int, techCause: Int?, reason: Int)
    ) async throws {
        let number = SimulatedAsterisk.destination(ofChannel: outcome.channel)
        try await AMIHarness.connected(directory: [number: outcome.behaviour]) { client, _, events in
            let id = UUID().uuidString.lowercased()
            let reply = try await client.send(
                .originate(
                    Originate(
                        channel: outcome.channel,
                        target: .dialplan(context: "ai-outbound", exten: "s", priority: "1"),
                        timeoutMilliseconds: 100,
                        channelID: id,
                        actionID: id
                    )
                )
            )
            #expect(reply.text == "Originate successfully queued")
            #expect(reply.actionID == id)

            var dialStatus: String?
            var causes: [(Int?, Int?)] = []
            var response: OriginateResponse?
            var sawNewchannel = false
            while response == nil || causes.isEmpty || (outcome.channel.hasPrefix("Local") && causes.count < 2) {
                guard case .event(let event)? = await events.next() else { break }
                switch event {
                case .newchannel(let snapshot): sawNewchannel = snapshot.uniqueID == id
                case .dialEnd(let dial) where dial.destination.uniqueID == id: dialStatus = dial.dialStatus
                case .hangup(let hangup) where hangup.channel.uniqueID?.hasPrefix(id) == true: causes.append((hangup.cause, hangup.techCause))
                case .originateResponse(let r) where r.actionID == id: response = r
                default: break
                }
            }
            #expect(sawNewchannel)
            #expect(dialStatus == outcome.dialStatus)
            #expect(causes.contains { $0.0 == outcome.cause && $0.1 == outcome.techCause })
            #expect(response?.succeeded == false)
            #expect(response?.reason.rawValue == outcome.reason)
            #expect(response?.uniqueID == id)
        }
    }

    @Test func aDuplicateChannelIDFailsWithoutANewChannel() async throws {
        try await AMIHarness.connected(directory: ["15550000009": .noAnswer]) { client, _, events in
            let id = UUID().uuidString.lowercased()
            let originate = Originate(
                channel: "PJSIP/15550000009@trunk",
                target: .dialplan(context: "ai-outbound", exten: "s", priority: "1"),
                timeoutMilliseconds: 2000,
                channelID: id
            )
            try await client.send(.originate(originate)).requireSuccess()
            var second = originate
            second.actionID = "second"
            try await client.send(.originate(second)).requireSuccess()
            var newchannels = 0
            while true {
                guard case .event(let event)? = await events.next() else { break }
                if case .newchannel = event { newchannels += 1 }
                if case .originateResponse(let response) = event, response.actionID == "second" {
                    #expect(!response.succeeded)
                    #expect(response.reason == .failure)
                    #expect(response.uniqueID == id)
                    break
                }
            }
            #expect(newchannels == 1)
        }
    }

    @Test func listActionsGatherTheirEvents() async throws {
        try await AMIHarness.connected(directory: ["15550000010": .noAnswer]) { client, _, events in
            let id = UUID().uuidString.lowercased()
            try await client.send(
                .originate(
                    Originate(
                        channel: "PJSIP/15550000010@trunk",
                        target: .dialplan(context: "ai-outbound", exten: "s", priority: "1"),
                        timeoutMilliseconds: 5000,
                        channelID: id
                    )
                )
            ).requireSuccess()
            _ = await next(in: &events) { if case .event(.newchannel) = $0 { return true } else { return false } }
            let channels = try await client.send(.coreShowChannels)
            #expect(channels.items.map { $0["Uniqueid"] } == [id])
            #expect(channels.events.last?["Event"] == "CoreShowChannelsComplete")
            let status = try await client.send(try .status())
            #expect(status.items.count == 1)
        }
    }

    @Test func reconnectsAfterTheServerDrops() async throws {
        try await AMIHarness.connected { client, pbx, events in
            pbx.dropConnections()
            let lost = await next(in: &events) { if case .disconnected = $0 { return true } else { return false } }
            #expect(lost == .disconnected(.connectionLost))
            #expect(await next(in: &events) { $0 == .connected } == .connected)
            let pong = try await client.send(.ping)
            #expect(pong.isSuccess)
            #expect(pbx.sessionCount == 1)
        }
    }

    @Test func keepalivePingsAreAnsweredAndTheSessionStays() async throws {
        try await AMIHarness.connected(keepalive: .milliseconds(30)) { client, _, _ in
            try await Task.sleep(for: .milliseconds(300))
            #expect(client.isConnected)
            #expect(try await client.send(.ping).isSuccess)
        }
    }

    @Test func secretsNeverReachTheLog() async throws {
        let capture = LogCapture()
        try await AMIHarness.connected(logger: capture.logger()) { client, pbx, events in
            pbx.dropConnections()
            _ = await next(in: &events) { $0 == .connected }
            _ = try await client.send(.ping)
        }
        #expect(!capture.all.isEmpty)
        #expect(!capture.all.contains { $0.contains(AMIHarness.secret) })
    }
}

/// A server that logs the client in and then never answers again.
@Suite(.timeLimit(.minutes(1))) struct AMISilentServerTests {
    final class MuteHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AMIInbound
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(ByteBuffer(string: "Asterisk Call Manager/11.0.0\r\n")), promise: nil)
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .message(let message) = self.unwrapInboundIn(data), message["Action"] == "Login" else { return }
            let reply = "Response: Success\r\nActionID: \(message["ActionID"] ?? "")\r\nMessage: Authentication accepted\r\n\r\n"
            context.writeAndFlush(NIOAny(ByteBuffer(string: reply)), promise: nil)
        }
    }

    func withMuteServer(_ body: (Int) async throws -> Void) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(AMIDecoder(role: .server)), MuteHandler()])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        try await body(server.localAddress!.port!)
        try await server.close()
    }

    @Test func anUnansweredActionTimesOutAndAMissedPingDropsTheConnection() async throws {
        try await self.withMuteServer { port in
            let client = AMIClient(
                configuration: .init(
                    host: "127.0.0.1", port: port, username: "u", secret: "s",
                    keepaliveInterval: .milliseconds(500), responseTimeout: .milliseconds(50),
                    backoff: ReconnectBackoff(initial: .seconds(5), maximum: .seconds(5))
                )
            )
            let events = client.subscribe()
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                var iterator = events.makeAsyncIterator()
                #expect(await next(in: &iterator) { $0 == .connected } == .connected)
                await #expect(throws: AMIClientError.responseTimeout) { try await client.send(.ping) }
                let lost = await next(in: &iterator) { if case .disconnected = $0 { return true } else { return false } }
                #expect(lost == .disconnected(.keepaliveTimeout))
                group.cancelAll()
            }
        }
    }

    /// Sends the banner and never answers anything.
    final class BannerOnly: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(ByteBuffer(string: "Asterisk Call Manager/9.0.0\r\n")), promise: nil)
        }
    }

    /// A server that accepts and then says nothing, or only its banner.
    func withSilentServer(banner: Bool, _ body: (Int) async throws -> Void) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                guard banner else { return channel.eventLoop.makeSucceededVoidFuture() }
                return channel.pipeline.addHandler(BannerOnly())
            }
            .bind(host: "127.0.0.1", port: 0).get()
        try await body(server.localAddress!.port!)
        try await server.close()
    }

    @Test(arguments: [(false, "banner"), (true, "login reply")])
    func aServerThatAcceptsAndStaysSilentIsLeftAtTheLoginDeadline(banner: Bool, stage: String) async throws {
        try await self.withSilentServer(banner: banner) { port in
            let client = AMIClient(
                configuration: .init(
                    host: "127.0.0.1", port: port, username: "u", secret: "s", loginTimeout: .milliseconds(200),
                    backoff: ReconnectBackoff(initial: .seconds(5), maximum: .seconds(5))))
            let events = client.subscribe()
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                var iterator = events.makeAsyncIterator()
                let first = await iterator.next()
                #expect(first == .disconnected(.loginTimeout(stage: stage)))
                group.cancelAll()
            }
        }
    }

    @Test func aClientThatCannotLogInGivesUpAfterTheTimeAllowed() async throws {
        try await self.withSilentServer(banner: false) { port in
            let client = AMIClient(
                configuration: .init(
                    host: "127.0.0.1", port: port, username: "u", secret: "s", loginTimeout: .milliseconds(100),
                    giveUpAfter: .milliseconds(500), backoff: ReconnectBackoff(initial: .milliseconds(50), maximum: .milliseconds(100))))
            let error = await #expect(throws: AMIClientError.self) { try await client.run() }
            #expect(error?.isUnavailable == true)
            #expect(error?.description.contains("sent no banner") == true, "\(String(describing: error))")
        }
    }

    @Test func aServerThatIsNotThereIsRetriedWithBackoff() async throws {
        // Bind and close to find a port nobody listens on.
        let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress!.port!
        try await probe.close()
        let client = AMIClient(
            configuration: .init(host: "127.0.0.1", port: port, username: "u", secret: "s", backoff: ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(20)))
        )
        let events = client.subscribe()
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            var iterator = events.makeAsyncIterator()
            var failures = 0
            while failures < 3, case .disconnected? = await iterator.next() { failures += 1 }
            #expect(failures == 3)
            group.cancelAll()
        }
    }
}
