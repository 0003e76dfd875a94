import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PBXSimulator
import TestSupport
import Testing

@testable import AudioSocket

/// Admits known calls, plays a short tone, then listens until the caller goes.
struct ListeningApp: AudioSocketApplication {
    let known: Set<UUID>
    let events = NIOLockedValueBox<[String]>([])
    let inboundFrames = NIOLockedValueBox<[UUID: Int]>([:])

    func admit(callID: UUID) async -> UUID? {
        self.known.contains(callID) ? callID : nil
    }

    func handle(_ session: AudioSocketSession, call: UUID) async throws {
        self.events.withLockedValue { $0.append("start \(call)") }
        await session.outbound.speak(TestAudio.tone(duration: .milliseconds(200)))
        for await item in session.inbound {
            if case .audio = item { self.inboundFrames.withLockedValue { $0[call, default: 0] += 1 } }
        }
        self.events.withLockedValue { $0.append("end \(call)") }
    }
}

@Suite(.timeLimit(.minutes(1))) struct AudioSocketServerTests {
    func withServer(
        _ app: ListeningApp,
        uuidTimeout: TimeAmount = .seconds(2),
        maximumCalls: Int? = nil,
        onRefused: (@Sendable () -> Void)? = nil,
        _ body: @Sendable (Int) async throws -> Void
    ) async throws {
        let port = PortWaiter()
        var configuration = AudioSocketServer<ListeningApp>.Configuration(port: 0, uuidTimeout: uuidTimeout, onListening: { port.set($0.port) })
        configuration.maximumCalls = maximumCalls
        configuration.onRefusedAtLimit = onRefused
        let server = AudioSocketServer(configuration: configuration, application: app)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            try await body(try await port.wait())
            group.cancelAll()
        }
    }

    @Test func anUnknownUUIDIsHungUpAtOnce() async throws {
        let app = ListeningApp(known: [])
        try await self.withServer(app) { port in
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: .listen).run()
            #expect(recording.ending == .engineHungUp)
            #expect(recording.received.map(\.kind) == [0x00])
            #expect(recording.duration < .seconds(1))
        }
        #expect(app.events.withLockedValue { $0 }.isEmpty)
    }

    @Test func callsBeyondTheLimitAreHungUpAtAcceptAndCountedAndAPlaceFreedIsTakenAgain() async throws {
        let ids = (0..<4).map { _ in UUID() }
        let app = ListeningApp(known: Set(ids))
        let refused = NIOLockedValueBox(0)
        try await self.withServer(app, maximumCalls: 2, onRefused: { refused.withLockedValue { $0 += 1 } }) { port in
            let short = CallerScript(steps: [], maximumDuration: .seconds(2))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in ids[0..<2] {
                    group.addTask { _ = await SimulatedCaller(host: "127.0.0.1", port: port, callID: id, script: short).run() }
                }
                try await eventually(within: .seconds(5)) { app.events.withLockedValue { $0 }.count == 2 }
                let third = await SimulatedCaller(host: "127.0.0.1", port: port, callID: ids[2], script: short).run()
                #expect(third.ending == .engineHungUp)
                #expect(third.received.map(\.kind) == [0x00])
                try await group.waitForAll()
            }
            // The first two have gone: a new call gets a place.
            let fourth = await SimulatedCaller(host: "127.0.0.1", port: port, callID: ids[3], script: short).run()
            #expect(fourth.ending != .engineHungUp)
        }
        let events = app.events.withLockedValue { $0 }
        #expect(!events.contains("start \(ids[2])"), "the refused call never reached the application")
        #expect(events.contains("start \(ids[3])"))
        #expect(refused.withLockedValue { $0 } == 1)
    }

    @Test func silenceFromTheEngineKeepsAQuietCallAlivePastTwoSeconds() async throws {
        let id = UUID()
        let app = ListeningApp(known: [id])
        try await self.withServer(app) { port in
            // The caller's leg produces no frames at all; only the engine's paced frames keep the call up.
            let script = CallerScript(steps: [.pause(.milliseconds(2600), sendSilence: false), .hangup], silenceBetweenSteps: false)
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: id, script: script).run()
            #expect(recording.ending == .callerHungUp)
            #expect(recording.received.allSatisfy { $0.kind == 0x10 && $0.length == 320 })
            #expect(recording.received.count > 100)
            // The tone, then silence: never an empty or odd frame, never a gap of 2 s.
            let gaps = zip(recording.received.dropFirst(), recording.received).map { $0.arrival - $1.arrival }
            #expect(gaps.allSatisfy { $0 < .seconds(1) })
            try await eventually { app.events.withLockedValue { $0 } == ["start \(id)", "end \(id)"] }
        }
    }

    @Test func aMalformedFrameEndsOnlyItsOwnCall() async throws {
        let good = UUID()
        let bad = UUID()
        let app = ListeningApp(known: [good, bad])
        try await self.withServer(app) { port in
            async let healthy = SimulatedCaller(
                host: "127.0.0.1", port: port, callID: good,
                script: CallerScript(steps: [.say(TestAudio.tone(duration: .milliseconds(600))), .hangup])
            ).run()
            async let broken = SimulatedCaller(
                host: "127.0.0.1", port: port, callID: bad,
                script: CallerScript(steps: [.pause(.milliseconds(100), sendSilence: true), .raw([0x10, 0x00, 0x03, 1, 2, 3])])
            ).run()
            let (goodCall, badCall) = await (healthy, broken)
            #expect(badCall.ending == .engineClosed)
            #expect(goodCall.ending == .callerHungUp)
            try await eventually { app.inboundFrames.withLockedValue { $0[good] } == 30 }
        }
    }

    @Test func aConnectionThatSendsNoUUIDIsClosed() async throws {
        let app = ListeningApp(known: [])
        try await self.withServer(app, uuidTimeout: .milliseconds(100)) { port in
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
            let started = ContinuousClock.now
            try await channel.closeFuture.get()
            #expect(ContinuousClock.now - started < .seconds(2))
            // A channel that is not Up: Asterisk connects and closes without a UUID.
            let recording = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: .listen, notUp: true).run()
            #expect(recording.ending == .notAnswered)
        }
    }

    @Test func dtmfReachesTheEngine() async throws {
        struct DTMFApp: AudioSocketApplication {
            let digits = NIOLockedValueBox<[Character]>([])
            func admit(callID: UUID) async -> UUID? { callID }
            func handle(_ session: AudioSocketSession, call: UUID) async throws {
                for await item in session.inbound {
                    if case .dtmf(let digit) = item { self.digits.withLockedValue { $0.append(digit) } }
                }
            }
        }
        let app = DTMFApp()
        let port = PortWaiter()
        let server = AudioSocketServer(configuration: .init(port: 0, onListening: { port.set($0.port) }), application: app)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let script = CallerScript(steps: [.dtmf("1"), .dtmf("#"), .pause(.milliseconds(60), sendSilence: true), .hangup])
            _ = await SimulatedCaller(host: "127.0.0.1", port: try await port.wait(), callID: UUID(), script: script).run()
            try await eventually { app.digits.withLockedValue { $0 } == ["1", "#"] }
            group.cancelAll()
        }
    }
}
