import CampaignCore
import CampaignStore
import Foundation
import GRDB
import Logging
import PBXSimulator
import TestSupport
import Testing

@testable import CampaignApp

/// A campaign in a scratch directory: its file, its lead list (with a `persona` column the
/// stand-in's callees follow), the repository's pitch template, and a fresh store.
struct CampaignFixture {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let directory: URL
    let store: CampaignStore
    let file: String

    /// `leads`: (phone, persona) pairs; `extra` is appended to the campaign file.
    /// `ami` is added to the file's `ami:` mapping.
    init(
        leads: [(String, String)], maxConcurrentCalls: Int = 4, window: String = "{start: \"09:00\", end: \"21:00\"}", ami: String? = nil,
        extra: String = ""
    ) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("cex-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let csv = "phone,first_name,city,persona\n" + leads.enumerated().map { "\($1.0),Lead\($0 + 1),Springfield,\($1.1)\n" }.joined()
        try csv.write(to: self.directory.appendingPathComponent("leads.csv"), atomically: true, encoding: .utf8)
        let yaml = """
            name: run-test
            leads: leads.csv
            template: \(Self.repository.appendingPathComponent("templates/solar-assessment.yaml").path)
            caller_id: '"Bright Solar" <+12125550100>'
            ami: {host: 127.0.0.1, port: 5038, username: cex\(ami.map { ", \($0)" } ?? "")}
            dial: PJSIP/{phone}@trunk
            answered: {context: ai-outbound, exten: s, priority: "1"}
            engine: {mode: embedded, address: "127.0.0.1:9092"}
            amd: true
            max_concurrent_calls: \(maxConcurrentCalls)
            calls_per_second: 5
            ring_timeout: 15s
            window: \(window)
            retry:
              max_attempts: 3
              busy: {delay: 10m, max: 2}
              no_answer: {delay: 2h, max: 2}
              voicemail: {delay: 4h, max: 1}
            \(extra)
            """
        self.file = self.directory.appendingPathComponent("campaign.yaml").path
        try yaml.write(toFile: self.file, atomically: true, encoding: .utf8)
        self.store = try CampaignStore(path: self.directory.appendingPathComponent("cex.sqlite").path)
    }

    func session(logger: Logger = Logger(label: "test")) throws -> CampaignSession {
        try CampaignSession(campaignFile: self.file, store: self.store, logger: logger)
    }

    /// Imports the leads and dials them against the stand-in on a clock that starts at `start`.
    func dial(
        startingAt start: Date, personas: [String: String]? = nil, logger: Logger = Logger(label: "test"),
        during: (@Sendable (SimulatedAsterisk) async throws -> Void)? = nil
    ) async throws -> CampaignRunner.Summary {
        let session = try self.session(logger: logger)
        _ = try session.importLeads()
        var directory = try await CampaignDemo.directory(campaign: session.campaign)
        if let personas {
            let behaviours = try await CampaignDemo.personas()
            for (phone, persona) in personas {
                let number = try PhoneNumberParser(defaultRegion: "US").parse(phone)
                directory[SimulatedAsterisk.destination(ofChannel: session.campaign.channel(for: number))] = behaviours[persona]
            }
        }
        var options = CampaignSession.RunOptions()
        let realStart = Date()
        options.runner.now = { start.addingTimeInterval(Date().timeIntervalSince(realStart)) }
        return try await CampaignDemo.dialStandIn(session, directory: directory, options: options, ringTime: .milliseconds(200), logger: logger, during: during)
    }

    func rows(_ sql: String) throws -> [Row] {
        try DatabaseQueue(path: self.store.path).read { db in try Row.fetchAll(db, sql: sql) }
    }

    /// Each lead's state, by E.164 number.
    func leads() throws -> [String: (status: String, attempts: Int, outcome: String?, next: Date?)] {
        var leads: [String: (String, Int, String?, Date?)] = [:]
        for row in try self.rows("SELECT phone, status, attempts, outcome, next_attempt_at FROM lead") {
            leads[row["phone"]] = (row["status"], row["attempts"], row["outcome"], row["next_attempt_at"])
        }
        return leads
    }
}

func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

func localParts(_ date: Date, _ zone: String) -> DateComponents {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: zone)!
    return calendar.dateComponents([.day, .hour, .minute], from: date)
}

/// Whole campaigns against the Asterisk stand-in: real AMI and AudioSocket sockets, the
/// embedded engine, offline speech on both sides, a real store, and an injected clock.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CampaignRunTests {
    /// Monday 13 July 2026, 14:00 in New York.
    static let mondayAfternoonNewYork = date("2026-07-13T18:00:00Z")

    @Test func aMixedCampaignEndsEveryLeadWithItsOutcomeAndPutsTheOptOutOnTheList() async throws {
        let fixture = try CampaignFixture(leads: [
            ("(212) 555-0101", "interested"), ("312-555-0102", "opt_out"), ("+1 213 555 0103", "not_interested"),
            ("305-555-0104", "busy"), ("404-555-0105", "no_answer"), ("617-555-0106", "voicemail"), ("718-555-0107", "unallocated"),
        ])
        let summary = try await fixture.dial(startingAt: Self.mondayAfternoonNewYork)
        let leads = try fixture.leads()
        #expect(leads["+12125550101"]?.outcome == "interested")
        #expect(leads["+13125550102"]?.outcome == "do_not_call")
        #expect(leads["+12135550103"]?.outcome == "not_interested")
        #expect(leads["+13055550104"]?.outcome == "busy")
        #expect(leads["+14045550105"]?.outcome == "no_answer")
        #expect(leads["+16175550106"]?.outcome == "voicemail")
        #expect(leads["+17185550107"]?.outcome == "invalid_number")
        // Final outcomes are done, and so is the voicemail (its rule allows one); busy and
        // no answer wait for their retry.
        #expect(leads.values.filter { $0.status == "done" }.count == 5)
        #expect(leads["+16175550106"]?.status == "done")
        for phone in ["+13055550104", "+14045550105"] {
            let next = try #require(leads[phone]?.next)
            #expect(next > Self.mondayAfternoonNewYork.addingTimeInterval(600), "\(phone)")
        }
        guard case .nothingDue = summary.ending else {
            Issue.record("ended \(summary.ending)")
            return
        }
        #expect(summary.progress.dialled == 7)
        // Every attempt settled, one per lead; the opt-out is on the DNC list, from the call.
        #expect(try fixture.rows("SELECT count(*) AS n FROM attempt WHERE outcome IS NULL")[0]["n"] as Int == 0)
        #expect(try fixture.rows("SELECT count(*) AS n FROM attempt")[0]["n"] as Int == 7)
        let dnc = try fixture.rows("SELECT phone, source FROM dnc")
        #expect(dnc.map { $0["phone"] as String } == ["+13125550102"])
        #expect((dnc.first?["source"] as String?)?.hasPrefix("opt-out in call") == true)
        // Answered calls have their engine record; the interested one has an analysis.
        let records = try fixture.rows(
            "SELECT a.phone, r.finished, r.sentiment_label FROM call_record r JOIN attempt a ON a.id = r.attempt_id ORDER BY a.phone")
        #expect(records.map { $0["phone"] as String } == ["+12125550101", "+12135550103", "+13125550102"])
        #expect(records.allSatisfy { $0["finished"] as Bool })
        let funnel = try fixture.store.funnel(campaignID: fixture.session().campaignID)
        #expect(funnel.abandonedCalls == 0 && funnel.answeredCalls == 3 && funnel.leads == 7 && funnel.dialled == 7)
    }

    @Test func aCallbackIsDialledAtTheHourTheCalleeAskedForInTheirOwnZone() async throws {
        // Los Angeles: 14:00 there is 21:00Z.
        let fixture = try CampaignFixture(leads: [("213-555-0111", "callback")])
        let mondayAfternoon = date("2026-07-13T21:00:00Z")
        _ = try await fixture.dial(startingAt: mondayAfternoon)
        let lead = try #require(try fixture.leads()["+12135550111"])
        #expect(lead.outcome == "callback")
        #expect(lead.status == "pending")
        // "call me back tomorrow at ten": 10:00 on Tuesday in Los Angeles.
        let next = try #require(lead.next)
        let local = localParts(next, "America/Los_Angeles")
        #expect(local.day == 14 && local.hour == 10 && local.minute == 0, "\(next)")

        // A minute early: nothing is due, and nothing is dialled.
        let early = try await fixture.dial(startingAt: next.addingTimeInterval(-60))
        #expect(early.progress.dialled == 0)
        #expect(early.ending == .nothingDue(next: next))
        #expect(try fixture.leads()["+12135550111"]?.attempts == 1)

        // On time: dialled once more; this time the callee is interested.
        let onTime = try await fixture.dial(startingAt: next, personas: ["213-555-0111": "interested"])
        #expect(onTime.progress.dialled == 1)
        let after = try #require(try fixture.leads()["+12135550111"])
        #expect(after.attempts == 2)
        #expect(after.outcome == "interested")
        let queued = try fixture.rows("SELECT queued_at FROM attempt ORDER BY number").map { $0["queued_at"] as Date }
        #expect(queued.count == 2 && queued[1] >= next)
    }

    @Test func theWindowClosingMidRunStopsDiallingAndLetsTheLiveCallFinish() async throws {
        let fixture = try CampaignFixture(
            leads: [("212-555-0121", "interested"), ("212-555-0122", "interested"), ("212-555-0123", "interested")], maxConcurrentCalls: 1)
        // 20:59:52 in New York: the first call starts inside the window; the window shuts during it.
        let summary = try await fixture.dial(startingAt: date("2026-07-14T00:59:52Z"))
        #expect(summary.ending == .windowClosed)
        #expect(summary.progress.dialled == 1)
        let leads = try fixture.leads()
        #expect(leads["+12125550121"]?.outcome == "interested")
        #expect(leads["+12125550122"]?.attempts == 0 && leads["+12125550123"]?.attempts == 0)
        let queued = try fixture.rows("SELECT queued_at FROM attempt").map { $0["queued_at"] as Date }
        #expect(queued.allSatisfy { $0 < date("2026-07-14T01:00:00Z") })
    }

    @Test func anAMIConnectionLostMidCampaignIsReconnectedReconciledAndTheCallsTalkOn() async throws {
        let fixture = try CampaignFixture(
            leads: [("212-555-0131", "interested"), ("212-555-0132", "interested"), ("212-555-0133", "interested")], maxConcurrentCalls: 2)
        let logs = LogCapture()
        let store = fixture.store
        let summary = try await fixture.dial(startingAt: Self.mondayAfternoonNewYork, logger: logs.logger(level: .info)) { pbx in
            // Two calls talking, then Asterisk "restarts" its manager interface.
            try await eventually(within: .seconds(60)) {
                let answered = try? DatabaseQueue(path: store.path).read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM attempt WHERE answered_at IS NOT NULL AND outcome IS NULL")
                }
                return (answered ?? 0) >= 2
            }
            try await Task.sleep(for: .seconds(1))
            pbx.dropConnections()
        }
        #expect(summary.ending == .finished)
        #expect(summary.progress.dialled == 3)
        #expect(logs.all.contains { $0.contains("AMI connection lost") })
        let leads = try fixture.leads()
        #expect(leads.values.map(\.outcome) == ["interested", "interested", "interested"])
        #expect(leads.values.allSatisfy { $0.attempts == 1 })
        #expect(try fixture.rows("SELECT count(*) AS n FROM attempt")[0]["n"] as Int == 3)
    }
}
