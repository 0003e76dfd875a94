import CampaignCore
import CampaignStore
import Foundation
import Testing

@testable import Reports

@Suite struct ReportsTests {
    func source(status: String, outcome: String?, call: CallRecordSummary?) -> LeadReportSource {
        LeadReportSource(
            header: ["Phone", "Full Name", "City"], record: "+12125550101,\"=HYPERLINK(\"\"x\"\")\",Springfield", phone: "+12125550101", status: status,
            attempts: 2, outcome: outcome, exhausted: false, callbackAt: nil, nextAttemptAt: nil, lastDialResult: "answered", lastAbandoned: false,
            call: call)
    }

    @Test func aRowTakesItsNameFromTheStoredRecordAndItsCellsAreSafeInASpreadsheet() throws {
        let row = LeadReportRow(
            self.source(status: "done", outcome: "interested", call: CallRecordSummary(sentimentLabel: "positive", sentimentScore: -0.456, objections: ["price", "renting"], talkSeconds: 36.84)),
            columns: try LeadColumns(header: ["Phone", "Full Name", "City"]))
        #expect(row.name == "=HYPERLINK(\"x\")")
        #expect(row.finalOutcome == "interested")
        let line = CSVWriter().record(row.csvFields())
        #expect(line.hasPrefix("'+12125550101,\"'=HYPERLINK(\"\"x\"\")\",2,interested,no,answered,36.8,positive,-0.46,"))
        #expect(line.contains("price; renting"))
    }

    @Test func aCampaignsOwnFieldsFollowTheStandardColumnsAndNeverTakeTheirNames() throws {
        let row = LeadReportRow(
            self.source(status: "done", outcome: "interested", call: CallRecordSummary(custom: ["roof_type": "slate", "unasked": "x"])), columns: nil)
        let fields = row.csvFields(custom: ["monthly_bill", "roof_type"])
        #expect(fields.count == LeadReportRow.csvHeader.count + 2)
        #expect(fields.suffix(2) == ["", "slate"])
        #expect(row.csvFields() == Array(fields.prefix(LeadReportRow.csvHeader.count)))
        // A campaign file cannot name a field after a standard column.
        #expect(Set(LeadReportRow.csvHeader).isSubset(of: AnalysisField.reservedNames))
    }

    @Test func aLeadWithAttemptsToGoIsPending() {
        #expect(LeadReportRow(self.source(status: "pending", outcome: "busy", call: nil), columns: nil).finalOutcome == "pending")
        #expect(LeadReportRow(self.source(status: "live", outcome: nil, call: nil), columns: nil).finalOutcome == "in_call")
    }

    @Test func theFunnelRoundsTheAbandonRate() {
        var counts = FunnelCounts()
        counts.abandonedCalls = 1
        counts.answeredCalls = 3
        #expect(Funnel(counts).abandonedPercent == 33.3)
        #expect(Funnel(FunnelCounts()).abandonedPercent == 0)
    }

    @Test func aRowWrittenByHandIsWhatJSONEncoderWrites() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let tricky = "Zoë \"Z\" O'Neil \\ a/b\n\t\u{1}\u{7F} 🙂"
        var rows = [
            LeadReportRow(self.source(status: "pending", outcome: nil, call: nil), columns: nil),
            LeadReportRow(
                self.source(
                    status: "done", outcome: "callback",
                    call: CallRecordSummary(
                        sentimentLabel: tricky, sentimentScore: -0.456, objective: "", motive: "x\r\u{8}\u{C}", objections: [tricky, ""],
                        callbackAt: Date(timeIntervalSince1970: 1_784_055_600.75), summary: tricky, talkSeconds: 1_234.56,
                        custom: ["roof_type": tricky, "a_b": "", "monthly_bill": "$180/month"])),
                columns: try LeadColumns(header: ["Phone", "Full Name", "City"])),
        ]
        rows[0].nextAttemptAt = Date(timeIntervalSince1970: -1)
        rows[1].sentimentScore = 0
        #expect(rows[0].custom == nil && rows[1].custom?.count == 3)
        for row in rows {
            var bytes: [UInt8] = []
            row.appendJSON(to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == String(decoding: try encoder.encode(row), as: UTF8.self))
        }
    }
}
