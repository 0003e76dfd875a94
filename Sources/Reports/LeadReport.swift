import CampaignCore
import CampaignStore
import Foundation

/// One row per lead: who, how often called, how it ended, and what the conversation said.
public struct LeadReportRow: Sendable, Hashable, Codable {
    public var phone: String
    public var name: String
    public var attempts: Int
    /// The lead's outcome; `pending` while it still has attempts to go.
    public var finalOutcome: String
    /// The retry budget ran out (the outcome is the last attempt's).
    public var retriesExhausted: Bool
    public var lastDialResult: String?
    public var talkSeconds: Double?
    public var sentiment: String?
    public var sentimentScore: Double?
    public var objective: String?
    public var motive: String?
    public var objections: [String]
    public var callbackAt: Date?
    public var nextAttemptAt: Date?
    public var summary: String?

    enum CodingKeys: String, CodingKey {
        case phone, name, attempts, sentiment, objective, motive, objections, summary
        case finalOutcome = "final_outcome"
        case retriesExhausted = "retries_exhausted"
        case lastDialResult = "last_dial_result"
        case talkSeconds = "talk_seconds"
        case sentimentScore = "sentiment_score"
        case callbackAt = "callback_at"
        case nextAttemptAt = "next_attempt_at"
    }

    /// `columns`: the source's header read as lead columns (one per import, not per row).
    public init(_ source: LeadReportSource, columns: LeadColumns?) {
        let fields = columns?.fields(of: LeadRecord.values(source.record)) ?? [:]
        self.phone = source.phone
        self.name = fields["name"] ?? ""
        self.attempts = source.attempts
        self.finalOutcome = source.status == "done" ? (source.outcome ?? "done") : (source.status == "live" ? "in_call" : "pending")
        self.retriesExhausted = source.exhausted
        self.lastDialResult = source.lastDialResult
        self.talkSeconds = source.call?.talkSeconds.map { ($0 * 10).rounded() / 10 }
        self.sentiment = source.call?.sentimentLabel
        self.sentimentScore = source.call?.sentimentScore.map { ($0 * 100).rounded() / 100 }
        self.objective = source.call?.objective
        self.motive = source.call?.motive
        self.objections = source.call?.objections ?? []
        self.callbackAt = source.callbackAt
        self.nextAttemptAt = source.status == "done" ? nil : source.nextAttemptAt
        self.summary = source.call?.summary
    }

    public static let csvHeader = [
        "phone", "name", "attempts", "final_outcome", "retries_exhausted", "last_dial_result", "talk_seconds", "sentiment", "sentiment_score",
        "objective", "motive", "objections", "callback_at", "next_attempt_at", "summary",
    ]

    public var csvFields: [String] {
        let dates = ISO8601DateFormatter()
        return [
            self.phone, self.name, "\(self.attempts)", self.finalOutcome, self.retriesExhausted ? "yes" : "no", self.lastDialResult ?? "",
            self.talkSeconds.map { String(format: "%.1f", $0) } ?? "", self.sentiment ?? "", self.sentimentScore.map { String(format: "%.2f", $0) } ?? "",
            self.objective ?? "", self.motive ?? "", self.objections.joined(separator: "; "), self.callbackAt.map(dates.string(from:)) ?? "",
            self.nextAttemptAt.map(dates.string(from:)) ?? "", self.summary ?? "",
        ]
    }
}

/// The campaign funnel, with the abandon rate.
public struct Funnel: Sendable, Hashable, Codable {
    public var counts: FunnelCounts
    /// Abandoned calls over calls a person answered, in percent.
    public var abandonedPercent: Double

    public init(_ counts: FunnelCounts) {
        self.counts = counts
        self.abandonedPercent = counts.answeredCalls == 0 ? 0 : (Double(counts.abandonedCalls) * 1000 / Double(counts.answeredCalls)).rounded() / 10
    }

    /// "leads 20 → dialled 20 → answered 14 → conversations 12 → interested 4 …"
    public var line: String {
        let c = self.counts
        return "leads \(c.leads) → dialled \(c.dialled) → answered \(c.answered) → conversations \(c.conversations) → interested \(c.interested); "
            + "callbacks \(c.callbacks), do not call \(c.doNotCall), voicemail \(c.voicemail), abandoned \(String(format: "%.1f", self.abandonedPercent))%; "
            + "\(c.pending) leads still to dial"
    }
}

/// Writes the per-lead report as CSV or JSON.
public enum ReportExporter {
    public enum Format: String, Sendable, CaseIterable {
        case csv, json
    }

    /// Streams the report to `output` (a file handle or standard output); returns the row count.
    @discardableResult
    public static func export(store: CampaignStore, campaignID: Int64, campaign: String, format: Format, to output: FileHandle) throws -> Int {
        var count = 0
        var columnsByHeader: [[String]: LeadColumns?] = [:]
        func row(_ source: LeadReportSource) -> LeadReportRow {
            if columnsByHeader[source.header] == nil { columnsByHeader[source.header] = .some(try? LeadColumns(header: source.header)) }
            return LeadReportRow(source, columns: columnsByHeader[source.header]!)
        }
        var buffer = Data()
        buffer.reserveCapacity(1 << 20)
        func flush(_ force: Bool = false) {
            if force || buffer.count >= 1 << 20 {
                output.write(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        switch format {
        case .csv:
            let writer = CSVWriter()
            buffer.append(contentsOf: writer.record(LeadReportRow.csvHeader).utf8)
            try store.forEachLeadReport(campaignID: campaignID) { source in
                buffer.append(contentsOf: writer.record(row(source).csvFields).utf8)
                count += 1
                flush()
            }
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            let funnel = Funnel(try store.funnel(campaignID: campaignID))
            buffer.append(contentsOf: "{\"campaign\":".utf8)
            buffer.append(try encoder.encode(campaign))
            buffer.append(contentsOf: ",\"funnel\":".utf8)
            buffer.append(try encoder.encode(funnel))
            buffer.append(contentsOf: ",\"leads\":[\n".utf8)
            try store.forEachLeadReport(campaignID: campaignID) { source in
                if count > 0 { buffer.append(contentsOf: ",\n".utf8) }
                buffer.append(try encoder.encode(row(source)))
                count += 1
                flush()
            }
            buffer.append(contentsOf: "\n]}\n".utf8)
        }
        flush(true)
        return count
    }
}
