import CampaignCore
import Foundation
import GRDB
import Testing

@testable import CampaignStore

/// Each test gets a fresh store file in a scratch directory.
func freshStore() throws -> CampaignStore {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cex-store-\(UUID().uuidString)")
    return try CampaignStore(path: directory.appendingPathComponent("cex.sqlite").path)
}

func campaign(_ name: String = "spring") throws -> Campaign {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cex-store-files-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory.appendingPathComponent("campaigns"), withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: directory.appendingPathComponent("templates"), withIntermediateDirectories: true)
    try "name: t\n".write(to: directory.appendingPathComponent("templates/t.yaml"), atomically: true, encoding: .utf8)
    try "phone\n".write(to: directory.appendingPathComponent("campaigns/leads.csv"), atomically: true, encoding: .utf8)
    let yaml = """
        name: \(name)
        leads: leads.csv
        template: t
        caller_id: '"Acme" <+12125550100>'
        ami: {username: cex}
        dial: PJSIP/{phone}@trunk
        retry: {max_attempts: 3, busy: {delay: 10m, max: 2}}
        """
    let file = directory.appendingPathComponent("campaigns/c.yaml")
    try yaml.write(to: file, atomically: true, encoding: .utf8)
    return try CampaignFile.parse(yaml, file: file.path)
}

/// Imports leads given as (line, E.164, zones).
func importLeads(_ store: CampaignStore, _ campaignID: Int64, _ leads: [(Int, String, String)]) throws {
    let text = leads.map { "\($0.1)" }.joined(separator: "\n")
    let bytes = Array(text.utf8)
    var offset = 0
    var imported: [ImportedLead] = []
    for (line, phone, zones) in leads {
        imported.append(ImportedLead(line: line, phone: PhoneNumber(e164: phone)!, timeZones: zones, record: offset..<(offset + phone.utf8.count)))
        offset += phone.utf8.count + 1
    }
    var batches = [imported]
    _ = try store.importLeads(
        campaignID: campaignID, file: "leads.csv", header: ["phone"], bytes: bytes, expectedRows: leads.count,
        next: { batches.popLast() }, counts: { .init() })
}

@Suite struct CampaignStoreTests {
    let monday10NewYork = try! Date("2026-07-13T14:00:00Z", strategy: .iso8601)

    @Test func theSchemaIsNamedAppendOnlyMigrations() throws {
        #expect(
            try freshStore().appliedMigrations() == [
                "v1: campaigns, leads, attempts, call records, do-not-call", "v2: runs", "v3: a campaign's own analysis fields",
                "v4: an attempt is admitted to the engine once",
            ])
    }

    @Test func aCampaignsAnalysisFieldsReachItsCallsAndTheirValuesAreKeptInAStoreOfTheVersionBefore() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cex-store-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        // A store as the version before wrote it, with the campaign in it.
        let old = try DatabaseQueue(path: path)
        try CampaignStore.migrator.migrate(old, upTo: "v2: runs")
        try old.write { db in
            try db.execute(sql: "INSERT INTO campaign (name, file, template, created_at) VALUES ('spring', 'c.yaml', 't.yaml', '2026-07-13 14:00:00.000')")
        }
        try old.close()
        let store = try CampaignStore(path: path)
        #expect(try store.appliedMigrations().last == "v4: an attempt is admitted to the engine once")
        let id = try #require(try store.campaignID(named: "spring"))
        #expect(try store.analysisFields(campaignID: id).isEmpty)

        var spring = try campaign()
        spring.analysisFields = [AnalysisField(name: "roof_type", description: "the roof's material"), AnalysisField(name: "bill", description: "the bill")]
        #expect(try store.campaignID(spring) == id)
        #expect(try store.analysisFields(campaignID: id) == spring.analysisFields)
        try importLeads(store, id, [(2, "+12125550101", "America/New_York")])
        let lead = try store.dueLeads(campaignID: id, zones: ["America/New_York"], now: self.monday10NewYork, limit: 1)[0]
        guard case .started(let attempt) = try store.beginAttempt(leadID: lead.id, now: self.monday10NewYork, channel: { "\($0)" }) else {
            Issue.record("no attempt")
            return
        }
        #expect(try store.admitCall(attempt.id)?.analysisFields == spring.analysisFields)
        try store.saveCallRecord(attempt.id, json: "{}", summary: CallRecordSummary(summary: "s", custom: ["roof_type": "slate"]), finished: false)
        #expect(try store.callRecord(attempt.id)?.summary.custom == ["roof_type": "slate"])
        try store.saveCallRecord(attempt.id, json: "{}", summary: CallRecordSummary(summary: "s"), finished: true)
        #expect(try store.callRecord(attempt.id)?.summary.custom == [:])
        #expect(try store.writer.read { db in try String?.fetchOne(db, sql: "SELECT custom FROM call_record") } == .some(nil))
    }

    @Test func anAttemptIsWrittenBeforeDiallingAndALeadNeverHasTwoLiveAttempts() throws {
        let store = try freshStore()
        let id = try store.campaignID(try campaign())
        try importLeads(store, id, [(2, "+12125550101", "America/New_York")])
        let due = try store.dueLeads(campaignID: id, zones: ["America/New_York"], now: self.monday10NewYork, limit: 10)
        #expect(due.map(\.phone.e164) == ["+12125550101"])
        guard case .started(let attempt) = try store.beginAttempt(leadID: due[0].id, now: self.monday10NewYork, channel: { "PJSIP/\($0)@trunk" }) else {
            Issue.record("not started")
            return
        }
        #expect(attempt.channel == "PJSIP/+12125550101@trunk" && attempt.number == 1)
        #expect(try store.unsettledAttempts(campaignID: id).map(\.id) == [attempt.id])
        // The lead is live: neither due nor startable again.
        #expect(try store.dueLeads(campaignID: id, zones: ["America/New_York"], now: self.monday10NewYork, limit: 10).isEmpty)
        #expect(try store.beginAttempt(leadID: due[0].id, now: self.monday10NewYork, channel: { "\($0)" }) == .skipped("no longer due"))
    }

    @Test func settlingSchedulesTheRetryInsideTheWindowAndASettledAttemptCannotChange() throws {
        let store = try freshStore()
        let campaign = try campaign()
        let id = try store.campaignID(campaign)
        try importLeads(store, id, [(2, "+12125550101", "America/New_York")])
        let lead = try store.dueLeads(campaignID: id, zones: ["America/New_York"], now: self.monday10NewYork, limit: 1)[0]
        // 20:55 New York: a busy retry 10 minutes later falls after 21:00, so it moves to 08:00 next day.
        let late = try Date("2026-07-14T00:55:00Z", strategy: .iso8601)
        guard case .started(let attempt) = try store.beginAttempt(leadID: lead.id, now: late, channel: { "\($0)" }) else { return }
        let decision = try store.settle(attempt.id, Settlement(outcome: .busy), now: late, policy: campaign.retry, window: campaign.window)
        #expect(decision == .retry(at: try Date("2026-07-14T12:00:00Z", strategy: .iso8601)))
        #expect(try store.settle(attempt.id, Settlement(outcome: .interested), now: late, policy: campaign.retry, window: campaign.window) == nil)
        #expect(throws: (any Error).self) { try store.writer.write { db in try db.execute(sql: "UPDATE attempt SET outcome = 'interested'") } }
        #expect(throws: (any Error).self) { try store.writer.write { db in try db.execute(sql: "DELETE FROM attempt") } }
        #expect(try store.unsettledAttempts(campaignID: id).isEmpty)
    }

    @Test func aNumberPutOnTheListAfterImportIsNotDialledAndTheLeadIsClosed() throws {
        let store = try freshStore()
        let id = try store.campaignID(try campaign())
        try importLeads(store, id, [(2, "+12125550101", "America/New_York")])
        let lead = try store.dueLeads(campaignID: id, zones: ["America/New_York"], now: self.monday10NewYork, limit: 1)[0]
        try store.addDoNotCall([PhoneNumber(e164: "+12125550101")!], source: "manual")
        #expect(try store.beginAttempt(leadID: lead.id, now: self.monday10NewYork, channel: { "\($0)" }) == .skipped("on the do-not-call list"))
        #expect(try store.funnel(campaignID: id).doNotCall == 1)
        #expect(try store.nextDueTime(campaignID: id).pending == false)
    }

    @Test func anOptOutSettlementListsTheNumberAndEndsTheLead() throws {
        let store = try freshStore()
        let campaign = try campaign()
        let id = try store.campaignID(campaign)
        try importLeads(store, id, [(2, "+12125550101", "America/New_York")])
        let lead = try store.dueLeads(campaignID: id, zones: ["America/New_York"], now: self.monday10NewYork, limit: 1)[0]
        guard case .started(let attempt) = try store.beginAttempt(leadID: lead.id, now: self.monday10NewYork, channel: { "\($0)" }) else { return }
        #expect(try store.admitCall(attempt.id)?.values == ["+12125550101"])
        // The same UUID again while the call is live (a replay): refused, once admitted.
        #expect(try store.admitCall(attempt.id) == nil)
        try store.settle(attempt.id, Settlement(outcome: .doNotCall), now: self.monday10NewYork, policy: campaign.retry, window: campaign.window)
        #expect(try store.isDoNotCall(PhoneNumber(e164: "+12125550101")!))
        // A settled attempt is no longer a call the engine may take.
        #expect(try store.admitCall(attempt.id) == nil)
    }

    @Test func aCallCutByACrashAfterTheAnswerCountsAsAnsweredAndAResumeRestartsTheCount() throws {
        let store = try freshStore()
        let campaign = try campaign()
        let id = try store.campaignID(campaign)
        try importLeads(store, id, [(2, "+12125550101", "America/New_York"), (3, "+12125550102", "America/New_York")])
        let due = try store.dueLeads(campaignID: id, zones: ["America/New_York"], now: self.monday10NewYork, limit: 2)
        var attempts: [Attempt] = []
        for lead in due {
            guard case .started(let attempt) = try store.beginAttempt(leadID: lead.id, now: self.monday10NewYork, channel: { "\($0)" }) else { return }
            attempts.append(attempt)
        }
        var answered = CallTrace()
        answered.answeredAt = self.monday10NewYork
        try store.recordProgress(attempts[0].id, trace: answered)
        // Cut by a crash after the answer, the agent never heard: lost, and abandoned.
        try store.settle(attempts[0].id, Settlement(outcome: .lost, trace: answered, abandoned: true), now: self.monday10NewYork, policy: campaign.retry, window: campaign.window)
        // A crash before the answer: not an answered call at all.
        try store.settle(attempts[1].id, Settlement(outcome: .lost), now: self.monday10NewYork, policy: campaign.retry, window: campaign.window)
        let since = self.monday10NewYork.addingTimeInterval(-86_400)
        #expect(try store.abandonRate(campaignID: id, since: since) == (1, 1))
        try store.setPaused(campaignID: id, true, reason: "abandon rate")
        try store.setPaused(campaignID: id, false, reason: nil, now: self.monday10NewYork.addingTimeInterval(60))
        #expect(try store.abandonRate(campaignID: id, since: since) == (0, 0), "a resume restarts the count")
    }

    @Test func aSecondFileWithTheSameCampaignNameIsRefusedNamingBothAndAMovedFileTakesOver() throws {
        let store = try freshStore()
        let first = try campaign("spring")
        let id = try store.campaignID(first)
        let second = try campaign("spring")
        let error = #expect(throws: StoreError.self) { try store.campaignID(second) }
        #expect(error?.message.contains(first.file) == true && error?.message.contains(second.file) == true, "\(String(describing: error))")
        #expect(try store.campaignFiles(campaignID: id)?.file == first.file, "the first file keeps its campaign")
        // The first file moved away: the campaign follows the file that now has its name.
        try FileManager.default.removeItem(atPath: first.file)
        #expect(try store.campaignID(second) == id)
        #expect(try store.campaignFiles(campaignID: id)?.file == second.file)
    }

    @Test func aFailedImportLeavesNothingBehind() throws {
        let store = try freshStore()
        let id = try store.campaignID(try campaign())
        struct Broken: Error {}
        var calls = 0
        #expect(throws: Broken.self) {
            _ = try store.importLeads(
                campaignID: id, file: "x.csv", header: ["phone"], bytes: Array("+12125550101".utf8), expectedRows: 1,
                next: {
                    calls += 1
                    if calls == 1 { return [ImportedLead(line: 2, phone: PhoneNumber(e164: "+12125550101")!, timeZones: "America/New_York", record: 0..<12)] }
                    throw Broken()
                }, counts: { .init() })
        }
        #expect(try store.phones(campaignID: id).isEmpty)
        #expect(try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM lead_import") } == 0)
    }

    @Test func oneRunnerPerCampaignAndALockFreedByItsHolderEndingTheRun() throws {
        let store = try freshStore()
        let id = try store.campaignID(try campaign())
        let other = try store.campaignID(try campaign("autumn"))
        let first = try store.lockRun(campaignID: id, campaign: "spring", command: "campaign start")
        #expect(try store.currentRun(campaignID: id)?.command == "campaign start")
        #expect(try store.currentRun(campaignID: id)?.pid == getpid())
        let busy = #expect(throws: RunLock.Busy.self) { try store.lockRun(campaignID: id, campaign: "spring", command: "campaign run") }
        #expect(busy?.holder?.command == "campaign start")
        // Another campaign is not held up.
        let second = try store.lockRun(campaignID: other, campaign: "autumn", command: "campaign run")
        second.release(ending: "done")

        first.release(ending: "every lead is done")
        #expect(try store.currentRun(campaignID: id) == nil)
        #expect(try store.lastRun(campaignID: id)?.ending == "every lead is done")
        let third = try store.lockRun(campaignID: id, campaign: "spring", command: "campaign run")
        #expect(try store.lastRun(campaignID: id)?.holder.command == "campaign run")
        #expect(try store.lastRun(campaignID: id)?.endedAt == nil)
        third.release(ending: "stopped")
    }

    @Test func aRunWhoseHolderDiedIsClosedByTheNextRunner() throws {
        let store = try freshStore()
        let id = try store.campaignID(try campaign())
        // A holder that vanished: its row is open, its lock is gone with its process.
        try store.writer.write { db in
            try db.execute(sql: "INSERT INTO run (campaign_id, pid, host, command, started_at) VALUES (?, 999999, 'h', 'campaign run', ?)", arguments: [id, Date()])
        }
        #expect(try store.currentRun(campaignID: id) == nil)
        let lock = try store.lockRun(campaignID: id, campaign: "spring", command: "campaign start")
        defer { lock.release(ending: "stopped") }
        let runs = try store.writer.read { db in try Row.fetchAll(db, sql: "SELECT ended_at, ending FROM run ORDER BY id") }
        #expect(runs.count == 2)
        #expect((runs[0]["ending"] as String?)?.contains("killed or crashed") == true)
        #expect((runs[1]["ended_at"] as Date?) == nil)
    }

    @Test func storedDatesParseAsGRDBWroteThem() throws {
        let queue = try DatabaseQueue()
        var generator = SystemRandomNumberGenerator()
        let dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 951_782_400.5)]
            + (0..<500).map { _ in Date(timeIntervalSince1970: Double(Int64.random(in: 0...4_000_000_000_000, using: &generator)) / 1000) }
        for date in dates {
            let text = try queue.read { db in try String.fetchOne(db, sql: "SELECT ?", arguments: [date])! }
            let parsed = try #require(StoredDate.parse(text), "\(text)")
            #expect(abs(parsed.timeIntervalSince(date)) < 0.001, "\(text)")
            let grdb = try #require(try queue.read { db in try Date.fetchOne(db, sql: "SELECT ?", arguments: [text]) })
            #expect(abs(grdb.timeIntervalSince(parsed)) < 0.000_01, "\(text)")
        }
        #expect(StoredDate.parse("2026-13-01 00:00:00") == nil)
        #expect(StoredDate.parse("yesterday") == nil)
    }

    @Test func aTestNumberListLimitsTheDueLeadsAndTheirZones() throws {
        let store = try freshStore()
        let id = try store.campaignID(try campaign())
        try importLeads(store, id, [
            (2, "+12125550101", "America/New_York"), (3, "+13125550102", "America/Chicago"), (4, "+12125550103", "America/New_York"),
        ])
        let zones = ["America/New_York", "America/Chicago"]
        #expect(try store.dueLeads(campaignID: id, zones: zones, now: self.monday10NewYork, limit: 10).count == 3)
        let only: Set<String> = ["+12125550103"]
        #expect(try store.dueLeads(campaignID: id, zones: zones, now: self.monday10NewYork, limit: 10, only: only).map(\.phone.e164) == ["+12125550103"])
        #expect(try store.dueLeads(campaignID: id, zones: zones, now: self.monday10NewYork, limit: 10, only: []).isEmpty)
        #expect(try store.pendingTimeZones(campaignID: id, now: self.monday10NewYork, only: ["+13125550102"]) == ["America/Chicago"])
        #expect(Set(try store.waitingTimeZones(campaignID: id)) == Set(zones))
    }

    @Test func reportBatchesHandOverEveryLeadOnceInFileOrderWhateverTheirSize() throws {
        let store = try freshStore()
        let id = try store.campaignID(try campaign())
        let phones = (0..<7).map { "+1212555010\($0)" }
        try importLeads(store, id, phones.enumerated().map { ($0.offset + 2, $0.element, "America/New_York") })
        _ = try store.addDoNotCall([PhoneNumber(e164: "+12125550103")!], source: "test")
        var whole: [LeadReportSource] = []
        try store.forEachLeadReport(campaignID: id) { whole.append($0) }
        #expect(whole.map(\.phone) == phones)
        #expect(whole.map(\.onDoNotCallList) == [false, false, false, true, false, false, false])
        for rows in [1, 3, 7, 8] {
            var sizes: [Int] = []
            var sources: [LeadReportSource] = []
            try store.forEachLeadReportBatch(campaignID: id, rows: rows) { batch in
                sizes.append(batch.count)
                sources += (0..<batch.count).map { batch[$0] }
            }
            #expect(sources == whole, "\(rows) rows a batch")
            #expect(sizes.allSatisfy { $0 >= 1 && $0 <= rows } && sizes.dropLast().allSatisfy { $0 == rows }, "\(sizes)")
        }
    }

    @Test func storedObjectionsReadAsJSONSerializationReadsThem() throws {
        let arrays: [[String]] = [[], [""], ["price"], ["price", "renting"], ["a,b", "", "c"], ["\",\""], ["say \"hi\"", "back\\slash"], ["line\nbreak"], ["é", "名前"]]
        for array in arrays {
            let json = String(decoding: try JSONEncoder().encode(array), as: UTF8.self)
            #expect(CampaignStore.stringArray(json) == array, "\(json)")
        }
        #expect(CampaignStore.stringArray("[\"a\", \"b\"]") == ["a", "b"])
        #expect(CampaignStore.stringArray("not json").isEmpty)
        #expect(CampaignStore.stringArray("[\"a\"\"b\"]").isEmpty)
    }
}
