import CampaignCore
import CampaignStore
import Foundation
import TestSupport
import Testing

@testable import Reports

/// A small campaign written to a fresh store with fixed times and ids, exported as CSV and
/// JSON, and compared with the committed reports in `Golden/`.
@Suite struct GoldenReportTests {
    static let start = try! Date("2026-07-13T18:00:00Z", strategy: .iso8601)

    func store() throws -> (CampaignStore, Int64) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cex-report-\(UUID().uuidString)")
        let store = try CampaignStore(path: directory.appendingPathComponent("cex.sqlite").path)
        let yaml = """
            name: golden
            leads: leads.csv
            template: t
            caller_id: x
            ami: {username: cex}
            dial: PJSIP/{phone}@trunk
            analysis_fields:
              roof_type: the roof's material
              monthly_bill: the monthly electricity bill, as said
            """
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("templates"), withIntermediateDirectories: true)
        try "name: t\n".write(to: directory.appendingPathComponent("templates/t.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("campaigns"), withIntermediateDirectories: true)
        try "phone\n".write(to: directory.appendingPathComponent("campaigns/leads.csv"), atomically: true, encoding: .utf8)
        let campaign = try CampaignFile.parse(yaml, file: directory.appendingPathComponent("campaigns/golden.yaml").path)
        let id = try store.campaignID(campaign, now: Self.start)

        // Leads as a spreadsheet might hold them: a formula in a name, a comma, a quote, accents.
        let csv = #"""
            phone,first_name,last_name,city
            +12125550101,Ana,López,"New York, NY"
            +13125550102,=cmd|' /C calc'!A0,Okafor,Chicago
            +14155550103,"Chloé ""Cle""",Martin,San Francisco
            +13055550104,Dev,Patel,Miami

            """#
        let bytes = Array(csv.utf8)
        var reader = CSVReader(bytes: bytes)
        let header = try #require(try reader.next())
        var leads: [ImportedLead] = []
        while let record = try reader.next() {
            leads.append(ImportedLead(line: record.line, phone: PhoneNumber(e164: record.field(0, in: bytes))!, timeZones: "America/New_York", record: record.range))
        }
        var batches = [leads]
        _ = try store.importLeads(
            campaignID: id, file: "leads.csv", header: header.strings(in: bytes), bytes: bytes, expectedRows: leads.count,
            next: { batches.popLast() }, counts: { .init() })
        return (store, id)
    }

    /// One attempt per lead, ending as given, at fixed times.
    func call(
        _ store: CampaignStore, _ campaignID: Int64, lead: Int, outcome: AttemptOutcome, dial: DialResult, record: CallRecordSummary? = nil
    ) throws {
        let at = Self.start.addingTimeInterval(Double(lead) * 60)
        let id = UUID(uuidString: "00000000-0000-4000-8000-00000000000\(lead)")!
        let due = try store.dueLeads(campaignID: campaignID, zones: ["America/New_York"], now: at, limit: 10)
        let leadID = try #require(due.first { $0.phone.e164.hasSuffix("0\(lead)") }?.id)
        guard case .started = try store.beginAttempt(leadID: leadID, now: at, id: id, channel: { "PJSIP/\($0.e164)@trunk" }) else {
            Issue.record("not started")
            return
        }
        var trace = CallTrace()
        if dial == .answered { trace.answeredAt = at.addingTimeInterval(5) }
        if let record {
            try store.saveCallRecord(id, json: "{}", summary: record, finished: true, now: at.addingTimeInterval(40))
        }
        _ = try store.settle(
            id, Settlement(outcome: outcome, trace: trace, dialResult: dial, firstAudioAt: record?.firstAudioAt, callbackAt: record?.callbackAt),
            now: at.addingTimeInterval(45), policy: .standard, window: .legal)
    }

    func export(_ store: CampaignStore, _ id: Int64, _ format: ReportExporter.Format) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cex-golden-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        _ = try ReportExporter.export(store: store, campaignID: id, campaign: "golden", format: format, to: handle)
        try handle.close()
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func theReportsOfASmallCampaignMatchTheGoldenFiles() throws {
        let (store, id) = try self.store()
        try self.call(
            store, id, lead: 1, outcome: .interested, dial: .answered,
            record: CallRecordSummary(
                outcome: "interested", sentimentLabel: "positive", sentimentScore: 0.62, objective: "book an assessment", motive: "lower bills",
                objections: ["price"], summary: "Objected on price, then booked an assessment.", talkSeconds: 41.25,
                firstAudioAt: Self.start.addingTimeInterval(60 + 5.4), custom: ["roof_type": "slate", "monthly_bill": "$180, more in summer"]))
        try self.call(
            store, id, lead: 2, outcome: .callback, dial: .answered,
            record: CallRecordSummary(
                outcome: "callback", sentimentLabel: "neutral", sentimentScore: 0, objections: [],
                callbackAt: try Date("2026-07-14T14:00:00Z", strategy: .iso8601), summary: "Asked to be called tomorrow at ten.", talkSeconds: 12.5,
                firstAudioAt: Self.start.addingTimeInterval(120 + 5.3)))
        try self.call(store, id, lead: 3, outcome: .busy, dial: .busy)
        try store.addDoNotCall([PhoneNumber(e164: "+13055550104")!], source: "manual")

        let csv = try self.export(store, id, .csv)
        if let mismatch = goldenMismatch(csv, name: "report.csv") { Issue.record("\(mismatch)") }
        let json = try self.export(store, id, .json)
        if let mismatch = goldenMismatch(json, name: "report.json") { Issue.record("\(mismatch)") }
    }
}
