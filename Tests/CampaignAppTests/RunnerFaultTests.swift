import AsteriskManager
import CampaignCore
import CampaignStore
import Foundation
import GRDB
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PBXSimulator
import TestSupport
import Testing

@testable import CampaignApp

/// Faults on the AMI link, injected by a TCP proxy between the runner and the stand-in
/// Asterisk: each run ends, or recovers, within a stated bound with every attempt settled.
/// The bounds are generous hang guards (the runner used to wait forever), not performance goals.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RunnerFaultTests {
    static let mondayAfternoonNewYork = date("2026-07-13T18:00:00Z")

    /// Dials `fixture` through a proxy to the stand-in; `during` injects the faults.
    func dial(
        _ fixture: CampaignFixture, logger: Logger = Logger(label: "test"),
        during: @escaping @Sendable (SimulatedAsterisk, FaultProxy) async throws -> Void
    ) async throws -> CampaignRunner.Summary {
        let session = try fixture.session(logger: logger)
        _ = try session.importLeads()
        let secret = UUID().uuidString
        let enginePort = try await CampaignDemo.freePort()
        let amiPort = PortWaiter()
        let pbx = SimulatedAsterisk(
            configuration: .init(
                host: "127.0.0.1", port: 0, users: [.init(username: session.campaign.ami.username, secret: secret)],
                contexts: ["ai-outbound": .init(engineHost: "127.0.0.1", enginePort: enginePort, runsAMD: false)],
                directory: try await CampaignDemo.directory(campaign: session.campaign), defaultBehaviour: .unallocated,
                ringTime: .milliseconds(200), seed: 3, onListening: { amiPort.set($0.port) }),
            logger: logger)
        return try await withThrowingTaskGroup(of: CampaignRunner.Summary?.self) { group in
            group.addTask {
                try await pbx.run()
                return nil
            }
            let proxy = try await FaultProxy.start(to: "127.0.0.1", port: try await amiPort.wait())
            var options = CampaignSession.RunOptions()
            options.secret = secret
            options.ami = ("127.0.0.1", proxy.port)
            options.engine = ("127.0.0.1", enginePort)
            options.engineDrain = .seconds(5)
            options.amiKeepalive = .seconds(1)
            let realStart = Date()
            let start = Self.mondayAfternoonNewYork
            options.runner.now = { start.addingTimeInterval(Date().timeIntervalSince(realStart)) }
            let runOptions = options
            group.addTask { try await session.dial(options: runOptions) }
            group.addTask {
                try await during(pbx, proxy)
                return nil
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let summary = next {
                    try await proxy.close()
                    return summary
                }
            }
            throw CancellationError()
        }
    }

    func waitForTalking(_ fixture: CampaignFixture, _ count: Int) async throws {
        try await eventually(within: .seconds(60)) {
            let rows = try? fixture.rows("SELECT count(*) AS n FROM attempt WHERE answered_at IS NOT NULL AND outcome IS NULL")
            return (rows?.first?["n"] as Int? ?? 0) >= count
        }
    }

    @Test func callsThatEndWhileTheAMILinkIsStalledAreSettledFromTheEngineOnceItIsBack() async throws {
        let fixture = try CampaignFixture(leads: [("212-555-0141", "interested"), ("212-555-0142", "not_interested")], maxConcurrentCalls: 2)
        let logs = LogCapture()
        let resumedAt = NIOLockedBox<ContinuousClock.Instant?>(nil)
        let summary = try await self.dial(fixture, logger: logs.logger(level: .info)) { pbx, proxy in
            try await self.waitForTalking(fixture, 2)
            proxy.stall()
            // Both calls end while AMI says nothing: no Hangup reaches the runner.
            try await eventually(within: .seconds(90)) { pbx.reports.count == 2 }
            try await Task.sleep(for: .seconds(3))
            resumedAt.set(.now)
            proxy.resume()
        }
        let recovered = try #require(resumedAt.value).duration(to: .now)
        #expect(summary.ending == .finished)
        #expect(summary.unsettled == 0)
        #expect(recovered < .seconds(30), "settled \(recovered) after the link came back")
        let leads = try fixture.leads()
        #expect(leads["+12125550141"]?.outcome == "interested")
        #expect(leads["+12125550142"]?.outcome == "not_interested")
        #expect(leads.values.allSatisfy { $0.attempts == 1 })
        #expect(logs.all.contains { $0.contains("AMI connection lost") })
    }

    @Test func aCallThatEndsWhileAMIIsDownIsSettledOnReconnectAndTheNextLeadIsDialled() async throws {
        let fixture = try CampaignFixture(
            leads: [("212-555-0151", "interested"), ("212-555-0152", "interested")], maxConcurrentCalls: 1)
        let summary = try await self.dial(fixture) { pbx, proxy in
            try await self.waitForTalking(fixture, 1)
            proxy.drop()
            try await eventually(within: .seconds(90)) { pbx.reports.count == 1 }
            proxy.resume()
        }
        #expect(summary.ending == .finished)
        let leads = try fixture.leads()
        #expect(leads.values.map(\.outcome) == ["interested", "interested"])
        #expect(leads.values.allSatisfy { $0.attempts == 1 })
    }

    @Test func anAMIThatNeverComesBackEndsTheRunAsUnavailableAndTheNextRunSettlesWhatWasLeft() async throws {
        let fixture = try CampaignFixture(leads: [("212-555-0161", "interested")], maxConcurrentCalls: 1, ami: "give_up_after: 5s")
        let started = NIOLockedBox<ContinuousClock.Instant?>(nil)
        let error = await #expect(throws: AMIClientError.self) {
            _ = try await self.dial(fixture) { _, proxy in
                try await self.waitForTalking(fixture, 1)
                started.set(.now)
                proxy.drop()
                try await Task.sleep(for: .seconds(120))
            }
        }
        #expect(error?.isUnavailable == true)
        let gaveUp = try #require(started.value).duration(to: .now)
        #expect(gaveUp < .seconds(20), "gave up \(gaveUp) after the link went")
        #expect(try fixture.rows("SELECT count(*) AS n FROM attempt WHERE outcome IS NULL")[0]["n"] as Int == 1)
        // A healthy PBX again: the left attempt is reconciled, not dialled again.
        let summary = try await self.dial(fixture) { _, _ in }
        #expect(summary.unsettled == 0)
        let attempts = try fixture.rows("SELECT outcome FROM attempt")
        #expect(attempts.count == 1)
        #expect(attempts.first?["outcome"] as String? != nil)
    }
}

/// A value shared between a test and the tasks it starts.
final class NIOLockedBox<Value: Sendable>: Sendable {
    private let box: NIOLockedValueBox<Value>
    init(_ value: Value) { self.box = NIOLockedValueBox(value) }
    var value: Value { self.box.withLockedValue { $0 } }
    func set(_ value: Value) { self.box.withLockedValue { $0 = value } }
}
