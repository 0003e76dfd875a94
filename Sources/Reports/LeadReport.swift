import CampaignCore
import CampaignStore
import Foundation
import JSON
import Synchronization

/// One row per lead: who, how often called, how it ended, and what the conversation said.
public struct LeadReportRow: Sendable, Hashable, Codable {
    public var phone: String
    public var name: String
    public var attempts: Int
    /// The lead's outcome; `pending` while it still has attempts to go, `do_not_call` once its
    /// number is on the list, dialled or not.
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
    /// The campaign's own analysis fields the model filled in; nil when none was.
    public var custom: [String: String]?

    enum CodingKeys: String, CodingKey {
        case phone, name, attempts, sentiment, objective, motive, objections, summary, custom
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
        self.phone = source.phone
        self.name = columns?.names(ofRecord: source.record).full ?? ""
        self.attempts = source.attempts
        switch source.status {
        case "done": self.finalOutcome = source.outcome ?? "done"
        case "live": self.finalOutcome = "in_call"
        // Put on the list after its import: it will be skipped when its turn comes.
        default: self.finalOutcome = source.onDoNotCallList ? AttemptOutcome.doNotCall.rawValue : "pending"
        }
        self.retriesExhausted = source.exhausted
        self.lastDialResult = source.lastDialResult
        self.talkSeconds = source.call?.talkSeconds.map { ($0 * 10).rounded() / 10 }
        self.sentiment = source.call?.sentimentLabel
        self.sentimentScore = source.call?.sentimentScore.map { ($0 * 100).rounded() / 100 }
        self.objective = source.call?.objective
        self.motive = source.call?.motive
        self.objections = source.call?.objections ?? []
        self.callbackAt = source.callbackAt
        self.nextAttemptAt = source.status == "done" || source.onDoNotCallList ? nil : source.nextAttemptAt
        self.summary = source.call?.summary
        self.custom = source.call.flatMap { $0.custom.isEmpty ? nil : $0.custom }
    }

    /// The columns every report has; a campaign's own analysis fields follow them.
    public static let csvHeader = [
        "phone", "name", "attempts", "final_outcome", "retries_exhausted", "last_dial_result", "talk_seconds", "sentiment", "sentiment_score",
        "objective", "motive", "objections", "callback_at", "next_attempt_at", "summary",
    ]

    /// The row's cells under `csvHeader`, then one per name in `custom`.
    public func csvFields(custom names: [String] = []) -> [String] {
        self.standardFields + names.map { self.custom?[$0] ?? "" }
    }

    var standardFields: [String] {
        [
            self.phone, self.name, String(self.attempts), self.finalOutcome, self.retriesExhausted ? "yes" : "no", self.lastDialResult ?? "",
            self.talkSeconds.map { ReportText.decimal($0, places: 1) } ?? "", self.sentiment ?? "",
            self.sentimentScore.map { ReportText.decimal($0, places: 2) } ?? "", self.objective ?? "", self.motive ?? "",
            self.objections.joined(separator: "; "), self.callbackAt.map(ReportText.iso8601) ?? "", self.nextAttemptAt.map(ReportText.iso8601) ?? "",
            self.summary ?? "",
        ]
    }
}

extension LeadReportRow {
    /// The row as JSONEncoder writes it (sorted keys, absent values left out, slashes as is),
    /// written directly: the encoder costs more than the rest of an export.
    func appendJSON(to out: inout [UInt8]) {
        var first = true
        func key(_ name: String) {
            out.append(contentsOf: first ? "{\"".utf8 : ",\"".utf8)
            first = false
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: "\":".utf8)
        }
        func string(_ name: String, _ value: String?) {
            guard let value else { return }
            key(name)
            JSONWriter.appendString(value, to: &out)
        }
        func number(_ name: String, _ value: Double?) {
            guard let value else { return }
            key(name)
            out.append(contentsOf: (value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)").utf8)
        }
        key("attempts")
        out.append(contentsOf: String(self.attempts).utf8)
        string("callback_at", self.callbackAt.map(ReportText.iso8601))
        if let custom = self.custom {
            key("custom")
            out.append(UInt8(ascii: "{"))
            for (index, name) in custom.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(name, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONWriter.appendString(custom[name]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        string("final_outcome", self.finalOutcome)
        string("last_dial_result", self.lastDialResult)
        string("motive", self.motive)
        string("name", self.name)
        string("next_attempt_at", self.nextAttemptAt.map(ReportText.iso8601))
        key("objections")
        out.append(UInt8(ascii: "["))
        for (index, objection) in self.objections.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(objection, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        string("objective", self.objective)
        string("phone", self.phone)
        key("retries_exhausted")
        out.append(contentsOf: (self.retriesExhausted ? "true" : "false").utf8)
        string("sentiment", self.sentiment)
        number("sentiment_score", self.sentimentScore)
        string("summary", self.summary)
        number("talk_seconds", self.talkSeconds)
        out.append(UInt8(ascii: "}"))
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
    ///
    /// The store's read and the formatting each take about half of an export, so batches of rows
    /// are decoded, formatted and written on a queue of their own while the read goes on.
    ///
    /// The CSV has a column for each of the campaign's own analysis fields; JSON rows have them
    /// under `custom`.
    @discardableResult
    public static func export(store: CampaignStore, campaignID: Int64, campaign: String, format: Format, to output: FileHandle) throws -> Int {
        let custom = try store.analysisFields(campaignID: campaignID).map(\.name)
        let writer = RowWriter(format: format, output: output, custom: custom)
        switch format {
        case .csv:
            CSVWriter().append(LeadReportRow.csvHeader + custom, to: &writer.buffer)
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let funnel = Funnel(try store.funnel(campaignID: campaignID))
            writer.buffer.append(contentsOf: "{\"campaign\":".utf8)
            writer.buffer.append(contentsOf: try encoder.encode(campaign))
            writer.buffer.append(contentsOf: ",\"funnel\":".utf8)
            writer.buffer.append(contentsOf: try encoder.encode(funnel))
            writer.buffer.append(contentsOf: ",\"leads\":[\n".utf8)
        }
        let queue = DispatchQueue(label: "cex.report.rows")
        // At most this many batches read ahead of the writer.
        let room = DispatchSemaphore(value: 4)
        do {
            try store.forEachLeadReportBatch(campaignID: campaignID) { batch in
                room.wait()
                if let error = writer.error.withLock({ $0 }) {
                    room.signal()
                    throw error
                }
                queue.async {
                    writer.write(batch)
                    room.signal()
                }
            }
        } catch {
            queue.sync {}
            throw error
        }
        return try queue.sync {
            if format == .json { writer.buffer.append(contentsOf: "\n]}\n".utf8) }
            writer.flush(force: true)
            if let error = writer.error.withLock({ $0 }) { throw error }
            return writer.count
        }
    }
}

/// Decodes and formats rows into a buffer, and writes it out by the megabyte. Used on one queue
/// only, one batch at a time, after the header was written on the caller's thread.
private final class RowWriter: @unchecked Sendable {
    let format: ReportExporter.Format
    let output: FileHandle
    /// The campaign's own analysis fields: the CSV's last columns.
    let custom: [String]
    let csv = CSVWriter()
    var buffer: [UInt8] = []
    var count = 0
    /// Lead columns by import: each import has its own header.
    var columns: [Int64: LeadColumns?] = [:]
    /// The first write that failed; what follows is dropped.
    let error = Mutex<(any Error)?>(nil)

    init(format: ReportExporter.Format, output: FileHandle, custom: [String]) {
        self.format = format
        self.output = output
        self.custom = custom
        self.buffer.reserveCapacity(1 << 20 + 64 << 10)
    }

    func write(_ batch: LeadReportBatch) {
        for index in 0..<batch.count {
            let source = batch[index]
            if self.columns[source.importID] == nil { self.columns[source.importID] = .some(try? LeadColumns(header: source.header)) }
            let row = LeadReportRow(source, columns: self.columns[source.importID]!)
            switch self.format {
            case .csv:
                self.csv.append(row.csvFields(custom: self.custom), to: &self.buffer)
            case .json:
                if self.count > 0 { self.buffer.append(contentsOf: ",\n".utf8) }
                row.appendJSON(to: &self.buffer)
            }
            self.count += 1
        }
        self.flush(force: false)
    }

    func flush(force: Bool) {
        guard force || self.buffer.count >= 1 << 20 else { return }
        if self.error.withLock({ $0 }) == nil {
            do {
                try self.output.write(contentsOf: self.buffer)
            } catch {
                self.error.withLock { $0 = error }
            }
        }
        self.buffer.removeAll(keepingCapacity: true)
    }
}
