import AsteriskManager
import CampaignCore
import CampaignStore
import Foundation
import GRDB
import Logging
import NIOConcurrencyHelpers
import TestSupport
import Testing

@testable import CampaignApp

/// Faults a real PBX has: a crash and restart with calls up, an AMI link that stalls while calls
/// end. Each run ends within a bound (a hang guard, not a performance goal) with every attempt
/// settled, none dialled twice, and no channel left.
@Suite(.serialized, .timeLimit(.minutes(4))) struct RealAsteriskFaultTests {
    static let mondayAfternoonNewYork = try! Date("2026-07-13T18:00:00Z", strategy: .iso8601)

    /// A campaign against a real Asterisk whose Local-channel callees run `steps` after Answer().
    struct Setup {
        let folder: URL
        let asterisk: RealAsterisk
        let store: CampaignStore
        let session: CampaignSession
        let enginePort: Int

        /// `answered`: the ai-outbound context's dialplan, with ENGINE for the engine's address
        /// (AudioSocket at once when nil).
        init(callees: [(digits: String, steps: [String])], answered: String? = nil, amiPort: ((Int) async throws -> Int)? = nil) async throws {
            self.folder = FileManager.default.temporaryDirectory.appendingPathComponent("cex-fault-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: self.folder, withIntermediateDirectories: true)
            self.enginePort = try await RealAsterisk.freePort()
            var dialplan = "[ai-outbound]\n"
            dialplan += (answered ?? "exten => s,1,AudioSocket(${CEX_CALL_ID},ENGINE)\n same => n,Hangup()\n")
                .replacingOccurrences(of: "ENGINE", with: "127.0.0.1:\(self.enginePort)")
            dialplan += "\n[callees]\n"
            for callee in callees {
                dialplan += "exten => \(callee.digits),1,Answer()\n"
                for step in callee.steps { dialplan += " same => n,\(step)\n" }
                dialplan += " same => n,Hangup()\n"
            }
            self.asterisk = try await RealAsterisk(dialplan: dialplan, transmitSilence: true)
            let port = try await amiPort?(self.asterisk.amiPort) ?? self.asterisk.amiPort
            let leads = "phone,first_name,city\n" + callees.enumerated().map { "+\($1.digits),Lead\($0 + 1),Springfield\n" }.joined()
            try leads.write(to: self.folder.appendingPathComponent("leads.csv"), atomically: true, encoding: .utf8)
            let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let file = self.folder.appendingPathComponent("campaign.yaml").path
            try """
                name: real-faults
                leads: leads.csv
                template: \(repository.appendingPathComponent("templates/solar-assessment.yaml").path)
                caller_id: '"Bright Solar" <+12125550100>'
                ami: {host: 127.0.0.1, port: \(port), username: \(self.asterisk.username)}
                dial: Local/{digits}@callees
                answered: {context: ai-outbound, exten: s, priority: "1"}
                engine: {mode: embedded, address: "127.0.0.1:\(self.enginePort)"}
                amd: \(answered?.contains("AMD(") == true)
                max_concurrent_calls: \(callees.count)
                calls_per_second: 10
                ring_timeout: 15s
                window: {start: "09:00", end: "21:00"}
                """.write(toFile: file, atomically: true, encoding: .utf8)
            self.store = try CampaignStore(path: self.folder.appendingPathComponent("cex.sqlite").path)
            var logger = Logger(label: "real-faults")
            logger.logLevel = .warning
            self.session = try CampaignSession(campaignFile: file, store: self.store, logger: logger)
            _ = try self.session.importLeads()
        }

        func dial() async throws -> CampaignRunner.Summary {
            var options = CampaignSession.RunOptions()
            options.secret = self.asterisk.secret
            options.engineDrain = .seconds(5)
            options.amiKeepalive = .seconds(1)
            let realStart = Date()
            let start = RealAsteriskFaultTests.mondayAfternoonNewYork
            options.runner.now = { start.addingTimeInterval(Date().timeIntervalSince(realStart)) }
            return try await self.session.dial(options: options)
        }

        func attempts() throws -> [(phone: String, outcome: String?)] {
            try DatabaseQueue(path: self.store.path).read { db in
                try Row.fetchAll(db, sql: "SELECT phone, outcome FROM attempt ORDER BY phone").map { ($0["phone"], $0["outcome"]) }
            }
        }

        func answeredAndLive() -> Int {
            (try? DatabaseQueue(path: self.store.path).read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM attempt WHERE answered_at IS NOT NULL AND outcome IS NULL")
            }) ?? 0
        }

        func tearDown() async {
            await self.asterisk.stop()
            try? FileManager.default.removeItem(at: self.folder)
        }
    }

    @Test func aPBXCrashWithCallsUpSettlesThemLostAndDialsNoneTwice() async throws {
        let setup = try await Setup(callees: [
            (digits: "12125550201", steps: ["Wait(90)"]),
            (digits: "12125550202", steps: ["Wait(90)"]),
        ])
        let restartedAt = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        let summary = try await withThrowingTaskGroup(of: CampaignRunner.Summary?.self) { group in
            group.addTask { try await setup.dial() }
            group.addTask {
                try await eventually(within: .seconds(60)) { setup.answeredAndLive() == 2 }
                try await Task.sleep(for: .seconds(2))
                try await setup.asterisk.crashAndRestart()
                restartedAt.withLockedValue { $0 = .now }
                return nil
            }
            var summary: CampaignRunner.Summary?
            while let next = try await group.next() { if let next { summary = next } }
            return try #require(summary)
        }
        let settledAfter = try #require(restartedAt.withLockedValue { $0 }).duration(to: .now)
        let channels = try setup.asterisk.activeChannels()
        let attempts = try setup.attempts()
        await setup.tearDown()
        #expect(settledAfter < .seconds(40), "the run ended \(settledAfter) after the PBX came back")
        #expect(summary.unsettled == 0)
        #expect(attempts.count == 2, "no lead dialled twice: \(attempts)")
        #expect(attempts.allSatisfy { $0.outcome == "lost" }, "\(attempts)")
        #expect(channels == 0)
    }

    @Test func callsThatEndWhileTheAMILinkIsStalledGetTheirOutcomesOnceItIsBack() async throws {
        let proxy = NIOLockedValueBox<FaultProxy?>(nil)
        let setup = try await Setup(
            callees: [
                (digits: "12125550211", steps: ["WaitForNoise(200,1,30)", "WaitForSilence(1200,1,30)", "Wait(1)", "Hangup()"]),
                (digits: "12125550212", steps: ["Wait(4)", "Hangup()"]),
            ],
            amiPort: { port in
                let started = try await FaultProxy.start(to: "127.0.0.1", port: port)
                proxy.withLockedValue { $0 = started }
                return started.port
            })
        let link = try #require(proxy.withLockedValue { $0 })
        let resumedAt = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        let summary = try await withThrowingTaskGroup(of: CampaignRunner.Summary?.self) { group in
            group.addTask { try await setup.dial() }
            group.addTask {
                try await eventually(within: .seconds(60)) { setup.answeredAndLive() == 2 }
                link.stall()
                // Both callees hang up while AMI says nothing.
                try await eventually(within: .seconds(60)) { (try? setup.asterisk.activeChannels()) == 0 }
                try await Task.sleep(for: .seconds(3))
                resumedAt.withLockedValue { $0 = .now }
                link.resume()
                return nil
            }
            var summary: CampaignRunner.Summary?
            while let next = try await group.next() { if let next { summary = next } }
            return try #require(summary)
        }
        let settledAfter = try #require(resumedAt.withLockedValue { $0 }).duration(to: .now)
        try await link.close()
        let attempts = try setup.attempts()
        await setup.tearDown()
        #expect(settledAfter < .seconds(30), "the run ended \(settledAfter) after the link came back")
        #expect(summary.unsettled == 0)
        #expect(attempts.count == 2, "\(attempts)")
        // The PBX's Hangups were never heard, but the same run of Asterisk is back (CoreStatus):
        // the callees hung up, and the engine's records say how the calls went (neither spoke).
        #expect(attempts.map(\.outcome) == ["no_conversation", "no_conversation"], "\(attempts)")
    }
}
