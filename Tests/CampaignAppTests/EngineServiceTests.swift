import Conversation
import Foundation
import Logging
import NIOCore
import NIOPosix
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
        metrics: EngineMetrics? = nil,
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
        configuration.metrics = metrics
        let logger = Logger(label: "test")
        let service = try EngineService(
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
            #expect(unknown.ending == .engineHungUp && unknown.receivedAudio.isEmpty, "\(unknown.ending)")
            // A registration naming a template that does not exist is refused too.
            let broken = UUID()
            try #"{"template": "no-such-template", "lead": {}}"#.write(
                to: calls.appendingPathComponent("\(broken.uuidString.lowercased()).json"), atomically: true, encoding: .utf8)
            let refused = await SimulatedCaller(host: "127.0.0.1", port: port, callID: broken, script: .listen).run()
            #expect(refused.ending == .engineHungUp && refused.receivedAudio.isEmpty, "\(refused.ending)")
        }
    }

    @Test func aShutdownLetsTheLiveCallSayGoodbyeAndFlushesItsRecord() async throws {
        let callID = UUID()
        let metrics = EngineMetrics()
        try await self.withService(drain: .milliseconds(500), metrics: metrics) { port, calls, group in
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
            // The metrics counted the call and the pacer's slots.
            let text = metrics.render()
            #expect(text.contains("cex_calls_started_total 1\n") && text.contains("cex_calls_active 0\n"))
            #expect(text.contains("cex_calls_ended_total{outcome=\"no_conversation\"} 1\n"), "\(text)")
            #expect(!text.contains("cex_frame_lateness_seconds_count 0\n"))
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

@Suite struct MetricsServerTests {
    @Test func servesTheMetricsAndNothingElse() async throws {
        let metrics = EngineMetrics()
        metrics.callStarted()
        metrics.replyStarted(after: .milliseconds(3), providers: ProviderTimes())
        metrics.replyStarted(after: .milliseconds(400), providers: ProviderTimes(llmTimeToFirstToken: .milliseconds(240), ttsTimeToFirstByte: .milliseconds(150)))
        let port = PortWaiter()
        let server = MetricsServer(host: "127.0.0.1", port: 0, metrics: metrics, logger: Logger(label: "test")) { port.set($0.port!) }
        let group = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let bound = try await port.wait()
            let page = try await Self.get("/metrics", port: bound)
            #expect(page.hasPrefix("HTTP/1.1 200 OK"))
            #expect(page.contains("cex_calls_active 1\n"))
            // 3 ms falls in the 5 ms bucket, not the 2.5 ms one.
            #expect(page.contains("cex_reply_latency_seconds_bucket{le=\"0.0025\"} 0\n") && page.contains("cex_reply_latency_seconds_bucket{le=\"0.005\"} 1\n"))
            #expect(page.contains("cex_reply_latency_seconds_count 2\n"))
            // The providers' waits, where a reply had them: 240 ms to the model's first token, 150 ms to the first audio.
            #expect(page.contains("cex_llm_time_to_first_token_seconds_bucket{le=\"0.2\"} 0\n") && page.contains("cex_llm_time_to_first_token_seconds_bucket{le=\"0.35\"} 1\n"))
            #expect(page.contains("cex_llm_time_to_first_token_seconds_count 1\n"))
            #expect(page.contains("cex_tts_time_to_first_byte_seconds_bucket{le=\"0.1\"} 0\n") && page.contains("cex_tts_time_to_first_byte_seconds_bucket{le=\"0.2\"} 1\n"))
            #expect(try await Self.get("/other", port: bound).hasPrefix("HTTP/1.1 404"))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// One HTTP/1.1 request over a plain socket; the server closes after the response.
    static func get(_ path: String, port: Int) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            var response = ""
            for try await chunk in inbound { response += String(buffer: chunk) }
            return response
        }
    }
}
