import AsteriskManager
import AudioSocket
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import PBXSimulator

/// Talks raw AMI to the stand-in, as a client that makes mistakes would.
final class RawAMIClient {
    private var iterator: NIOAsyncChannelInboundStream<AMIInbound>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    private init(inbound: NIOAsyncChannelInboundStream<AMIInbound>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.iterator = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Connects, runs `body` with the connection and closes it afterwards.
    static func withConnection<Result>(port: Int, _ body: (RawAMIClient) async throws -> Result) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AMIDecoder(role: .client)))
                return try NIOAsyncChannel<AMIInbound, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(RawAMIClient(inbound: inbound, outbound: outbound))
        }
    }

    func send(_ headers: [(String, String)]) async throws {
        var buffer = ByteBuffer()
        try AMIEncoder.write(AMIMessage(headers), into: &buffer)
        try await self.outbound.write(buffer)
    }

    func next() async throws -> AMIInbound? { try await self.iterator.next() }

    /// The next packet, skipping events unless asked for.
    func nextMessage(events: Bool = false) async throws -> AMIMessage? {
        while let item = try await self.iterator.next() {
            guard case .message(let message) = item else { continue }
            if !events, case .event = message.kind { continue }
            return message
        }
        return nil
    }
}

@Suite(.timeLimit(.minutes(1))) struct SimulatedAsteriskTests {
    func withPBX(
        users: [SimulatedAsterisk.User] = [.init(username: "cex", secret: "s")],
        _ body: @Sendable (SimulatedAsterisk, Int) async throws -> Void
    ) async throws {
        let port = PortWaiter()
        let pbx = SimulatedAsterisk(
            configuration: .init(
                port: 0, users: users, contexts: ["ai": .init(engineHost: "127.0.0.1", enginePort: 1)],
                defaultBehaviour: .busy, ringTime: .milliseconds(10), authenticationFailureDelay: .milliseconds(10),
                onListening: { port.set($0.port) }
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pbx.run() }
            try await body(pbx, try await port.wait())
            group.cancelAll()
        }
    }

    @Test func greetsRefusesBeforeLoginAndClosesAfterABadSecret() async throws {
        try await self.withPBX { _, port in
            try await RawAMIClient.withConnection(port: port) { client in
                #expect(try await client.next() == .banner("Asterisk Call Manager/11.0.0"))
                try await client.send([("Action", "Originate"), ("ActionID", "o1"), ("Channel", "PJSIP/1@t")])
                #expect(try await client.nextMessage() == AMIMessage([("Response", "Error"), ("ActionID", "o1"), ("Message", "Permission denied")]))
                try await client.send([("Action", "Login"), ("Username", "cex"), ("Secret", "nope")])
                #expect(try await client.nextMessage() == AMIMessage([("Response", "Error"), ("Message", "Authentication failed")]))
                #expect(try await client.next() == nil)
            }
        }
    }

    @Test func validatesOriginateAsAsteriskDoes() async throws {
        try await self.withPBX(users: [.init(username: "cex", secret: "s", write: ["originate"])]) { _, port in
            try await RawAMIClient.withConnection(port: port) { client in
                try await client.send([("Action", "Login"), ("Username", "cex"), ("Secret", "s")])
                #expect(try await client.nextMessage()?["Message"] == "Authentication accepted")
                let cases: [([(String, String)], String)] = [
                    ([], "Channel not specified"),
                    ([("Channel", "nonsense")], "Invalid channel"),
                    ([("Channel", "PJSIP/1@t"), ("Exten", "s")], "Originate with 'Exten' requires 'Context' and 'Priority'"),
                    ([("Channel", "PJSIP/1@t"), ("Application", "Wait"), ("Timeout", "soon")], "Invalid timeout"),
                    ([("Channel", "PJSIP/1@t"), ("Application", "System"), ("Data", "rm -rf /")], "Originate Access Forbidden: app or data blacklisted"),
                    ([("Channel", "PJSIP/1@t"), ("Context", "elsewhere"), ("Exten", "s"), ("Priority", "1")], "Extension does not exist."),
                ]
                for (fields, message) in cases {
                    try await client.send([("Action", "Originate")] + fields)
                    #expect(try await client.nextMessage()?["Message"] == message)
                }
                try await client.send([("Action", "Bogus")])
                #expect(try await client.nextMessage()?["Message"] == "Invalid/unknown command: Bogus. Use Action: ListCommands to show available commands.")
                try await client.send([("Action", "Logoff")])
                #expect(try await client.nextMessage() == AMIMessage([("Response", "Goodbye"), ("Message", "Thanks for all the fish.")]))
                #expect(try await client.next() == nil)
            }
        }
    }

    @Test func eventsReachOnlySessionsWhoseClassesAllowThem() async throws {
        let users: [SimulatedAsterisk.User] = [.init(username: "cex", secret: "s"), .init(username: "nodialplan", secret: "s", read: ["call"])]
        try await self.withPBX(users: users) { _, port in
            try await RawAMIClient.withConnection(port: port) { full in
                try await full.send([("Action", "Login"), ("Username", "cex"), ("Secret", "s"), ("Events", "call,dialplan")])
                #expect(try await full.nextMessage()?["Message"] == "Authentication accepted")
                try await RawAMIClient.withConnection(port: port) { limited in
                    try await limited.send([("Action", "Login"), ("Username", "nodialplan"), ("Secret", "s")])
                    #expect(try await limited.nextMessage()?["Message"] == "Authentication accepted")
                    try await RawAMIClient.withConnection(port: port) { silenced in
                        try await silenced.send([("Action", "Login"), ("Username", "cex"), ("Secret", "s"), ("Events", "off")])
                        #expect(try await silenced.nextMessage()?["Message"] == "Authentication accepted")

                        try await full.send([
                            ("Action", "Originate"), ("ActionID", "a"), ("Channel", "PJSIP/5@t"), ("Application", "Wait"), ("Data", "1"),
                            ("Variable", "X=1,Y=2"), ("Async", "true"),
                        ])
                        var fullEvents: [String] = []
                        while let message = try await full.nextMessage(events: true) {
                            if case .event(let name) = message.kind { fullEvents.append(name) }
                            if fullEvents.last == "OriginateResponse" || fullEvents.filter({ $0 == "Hangup" }).count == 1 && fullEvents.contains("OriginateResponse") { break }
                        }
                        #expect(fullEvents.contains("Newchannel"))
                        #expect(fullEvents.contains("DialEnd"))
                        // The limited user sees call events and never dialplan ones; the silenced session sees nothing.
                        try await limited.send([("Action", "Ping"), ("ActionID", "p")])
                        var limitedEvents: [String] = []
                        while let message = try await limited.nextMessage(events: true) {
                            if message["ActionID"] == "p" { break }
                            if case .event(let name) = message.kind { limitedEvents.append(name) }
                        }
                        #expect(limitedEvents.contains("Newchannel"))
                        try await silenced.send([("Action", "Ping"), ("ActionID", "p")])
                        let first = try await silenced.nextMessage(events: true)
                        #expect(first?["Ping"] == "Pong")
                    }
                }
            }
        }
    }

    @Test func theCallerHangsUpOnFramesAsteriskRefuses() async throws {
        // An engine that answers the UUID with a UUID frame of its own: kind 0x01 is fatal for Asterisk.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoUUIDHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let recording = await SimulatedCaller(host: "127.0.0.1", port: server.localAddress!.port!, callID: UUID(), script: .listen).run()
        #expect(recording.ending == .violation("Received AudioSocket message other than hangup or audio (kind 0x01)"))
        try await server.close()
    }

    @Test func theCallerHangsUpAfterTwoSecondsWithoutTraffic() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let script = CallerScript(steps: [], silenceBetweenSteps: false)
        let recording = await SimulatedCaller(
            host: "127.0.0.1", port: server.localAddress!.port!, callID: UUID(), script: script, inactivityLimit: .milliseconds(300)
        ).run()
        #expect(recording.ending == .inactivity)
        try await server.close()
    }

    @Test func wavFilesRoundTrip() throws {
        let wav = WAVFile(sampleRate: 8000, samples: [0, 1, -1, 32767, -32768])
        #expect(try WAVFile(bytes: wav.bytes) == wav)
        #expect(throws: WAVFile.FormatError.self) { try WAVFile(bytes: Array("not a wav".utf8)) }
    }
}

final class EchoUUIDHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: min(19, buffer.readableBytes)), bytes.first == 0x01 {
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
        }
    }
}
