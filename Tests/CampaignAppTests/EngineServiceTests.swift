import Conversation
import Foundation
import Logging
import NIOCore
import PBXSimulator
import ServiceLifecycle
import TestSupport
import Testing

@testable import CampaignApp

/// `cex engine serve` without the command line: registered calls only, and a graceful
/// shutdown that lets a live call say goodbye and flushes its record.
@Suite(.serialized, .timeLimit(.minutes(2))) struct EngineServiceTests {
    static var templates: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("templates")
    }

    /// Runs the service around `body`, shuts it down, and once it has returned runs `afterwards`
    /// with the records directory.
    func withService(
        drain: Duration,
        _ body: @Sendable (Int, URL, ServiceGroup) async throws -> Void,
        afterwards: (URL) throws -> Void = { _ in }
    ) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cex-engine-\(UUID().uuidString)")
        let calls = root.appendingPathComponent("calls")
        try FileManager.default.createDirectory(at: calls, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let port = PortWaiter()
        var configuration = EngineService.Configuration()
        configuration.port = 0
        configuration.maximumCalls = 1
        configuration.drain = drain
        configuration.records = root.appendingPathComponent("records")
        configuration.onListening = { port.set($0.port) }
        let logger = Logger(label: "test")
        let service = EngineService(
            configuration: configuration,
            resolver: RegisteredCallDirectory(directory: calls, templates: Self.templates, logger: logger),
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body(try await port.wait(), calls, group)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try afterwards(configuration.records)
    }

    @Test func refusesUnregisteredAndBrokenCalls() async throws {
        try await self.withService(drain: .zero) { port, calls, _ in
            let unknown = await SimulatedCaller(host: "127.0.0.1", port: port, callID: UUID(), script: .listen).run()
            #expect(unknown.ending == .engineHungUp && unknown.receivedAudio.isEmpty)
            // A registration naming a template that does not exist is refused too.
            let broken = UUID()
            try #"{"template": "no-such-template", "lead": {}}"#.write(
                to: calls.appendingPathComponent("\(broken.uuidString.lowercased()).json"), atomically: true, encoding: .utf8)
            let refused = await SimulatedCaller(host: "127.0.0.1", port: port, callID: broken, script: .listen).run()
            #expect(refused.ending == .engineHungUp && refused.receivedAudio.isEmpty)
        }
    }

    @Test func aShutdownLetsTheLiveCallSayGoodbyeAndFlushesItsRecord() async throws {
        let callID = UUID()
        try await self.withService(drain: .milliseconds(500)) { port, calls, group in
            let registration = RegisteredCall(template: "solar-assessment", lead: ["first_name": "Ana", "city": "Springfield"], timeZone: "America/Chicago")
            try JSONEncoder().encode(registration).write(to: calls.appendingPathComponent("\(callID.uuidString.lowercased()).json"))
            let caller = Task { await SimulatedCaller(host: "127.0.0.1", port: port, callID: callID, script: .listen).run() }
            try await Task.sleep(for: .seconds(2))
            await group.triggerGracefulShutdown()
            let recording = await caller.value
            #expect(recording.ending == .engineHungUp)
        } afterwards: { records in
            // The service returned: the record is complete on disk.
            let data = try Data(contentsOf: records.appendingPathComponent("\(callID.uuidString.lowercased()).json"))
            let record = try JSONDecoder.records.decode(CallRecord.self, from: data)
            #expect(record.endedBy == "shutdown")
            #expect(record.turns.first?.text.hasPrefix("Hi Ana, this is Alex from Bright Solar.") == true)
            #expect(record.turns.first?.interrupted == true)
            #expect(record.turns.last?.text == "I'm sorry, I have to end our call here. Thank you, goodbye.")
            #expect(record.turns.last?.interrupted == false)
            #expect(record.endedAt != nil)
        }
    }
}

extension JSONDecoder {
    static var records: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
