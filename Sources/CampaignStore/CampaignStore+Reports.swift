import CampaignCore
import Foundation
import GRDB
import GRDBSQLite

/// One lead with its last attempt and that attempt's call record, as the reports read it.
public struct LeadReportSource: Sendable, Hashable {
    /// The import the lead came in with, and that import's header.
    public var importID: Int64
    public var header: [String]
    public var record: String
    public var phone: String
    public var status: String
    public var attempts: Int
    public var outcome: String?
    public var exhausted: Bool
    public var callbackAt: Date?
    public var nextAttemptAt: Date?
    public var lastDialResult: String?
    public var lastAbandoned: Bool
    public var call: CallRecordSummary?
    /// The number is on the do-not-call list now (it may have been put there after the import).
    public var onDoNotCallList: Bool

    public init(
        importID: Int64 = 0, header: [String], record: String, phone: String, status: String, attempts: Int, outcome: String?, exhausted: Bool, callbackAt: Date?,
        nextAttemptAt: Date?, lastDialResult: String?, lastAbandoned: Bool, call: CallRecordSummary?, onDoNotCallList: Bool = false
    ) {
        self.importID = importID
        self.header = header
        self.record = record
        self.phone = phone
        self.status = status
        self.attempts = attempts
        self.outcome = outcome
        self.exhausted = exhausted
        self.callbackAt = callbackAt
        self.nextAttemptAt = nextAttemptAt
        self.lastDialResult = lastDialResult
        self.lastAbandoned = lastAbandoned
        self.call = call
        self.onDoNotCallList = onDoNotCallList
    }
}

/// Campaign-wide counts.
public struct FunnelCounts: Sendable, Hashable, Codable {
    public var leads = 0
    public var dialled = 0
    public var attempts = 0
    public var answered = 0
    public var conversations = 0
    public var interested = 0
    public var callbacks = 0
    public var doNotCall = 0
    public var voicemail = 0
    public var abandonedCalls = 0
    public var answeredCalls = 0
    public var pending = 0
    public var done = 0

    public init() {}
}

extension CampaignStore {
    /// Every lead of the campaign in file order, handed to `body` one at a time.
    public func forEachLeadReport(campaignID: Int64, _ body: (LeadReportSource) throws -> Void) throws {
        try self.forEachLeadReportBatch(campaignID: campaignID) { batch in
            for row in 0..<batch.count { try body(batch[row]) }
        }
    }

    /// Every lead of the campaign in file order, `rows` at a time, as SQLite's bytes: decoding them
    /// is left to whoever takes the batch (an export decodes on another thread than the read).
    public func forEachLeadReportBatch(campaignID: Int64, rows: Int = 2048, _ body: (LeadReportBatch) throws -> Void) throws {
        try self.writer.read { db in
            var headers: [Int64: [String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, header FROM lead_import WHERE campaign_id = ?", arguments: [campaignID]) {
                headers[row["id"]] = (try? JSONDecoder().decode([String].self, from: Data((row["header"] as String).utf8))) ?? []
            }
            let statement = try db.makeStatement(sql: LeadReportBatch.query)
            // Stepped by hand, cells copied straight from SQLite: GRDB's rows cost more than the rest of an export.
            let handle = statement.sqliteStatement
            sqlite3_bind_int64(handle, 1, campaignID)
            defer { sqlite3_reset(handle) }
            var batch = LeadReportBatch(headers: headers, rows: rows)
            while true {
                let code = sqlite3_step(handle)
                if code == SQLITE_DONE { break }
                guard code == SQLITE_ROW else { throw StoreError("the report could not be read (\(String(cString: sqlite3_errstr(code))))") }
                batch.append(handle)
                if batch.count == rows {
                    try body(batch)
                    batch = LeadReportBatch(headers: headers, rows: rows)
                }
            }
            if batch.count > 0 { try body(batch) }
        }
    }

    /// A stored JSON array of strings (objections); JSONDecoder per row would dominate an export.
    static func stringArray(_ json: String) -> [String] {
        guard json != "[]" else { return [] }
        // As the store writes it: `["a","b"]`, nothing escaped. A quote inside a string would be
        // escaped, so `","` can only stand between two strings.
        let bytes = Array(json.utf8)
        if bytes.count >= 4, bytes.starts(with: [0x5B, 0x22]), bytes.last == 0x5D, bytes[bytes.count - 2] == 0x22,
            !bytes.contains(0x5C), !bytes.contains(where: { $0 < 0x20 })
        {
            let inner = bytes[2..<(bytes.count - 2)]
            let pieces = inner.split(separator: 0x22, omittingEmptySubsequences: false)
            // Quotes come in `","` separators only: piece, `,`, piece, `,`, … piece.
            if pieces.count % 2 == 1, stride(from: 1, to: pieces.count, by: 2).allSatisfy({ pieces[$0].elementsEqual([0x2C]) }) {
                return stride(from: 0, to: pieces.count, by: 2).map { String(decoding: pieces[$0], as: UTF8.self) }
            }
        }
        return (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String]) ?? []
    }

    public func funnel(campaignID: Int64) throws -> FunnelCounts {
        try self.writer.read { db in
            func list(_ outcomes: [AttemptOutcome]) -> String { outcomes.map { "'\($0.rawValue)'" }.joined(separator: ", ") }
            let human = list(AttemptOutcome.allCases.filter(\.isHumanAnswer))
            let conversation = list(AttemptOutcome.allCases.filter(\.isConversation))
            var funnel = FunnelCounts()
            let leads = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*) AS leads, coalesce(sum(attempts > 0), 0) AS dialled, coalesce(sum(outcome = 'interested'), 0) AS interested,
                        coalesce(sum(outcome = 'callback'), 0) AS callbacks, coalesce(sum(outcome = 'do_not_call'), 0) AS dnc,
                        coalesce(sum(status != 'done'), 0) AS pending, coalesce(sum(status = 'done'), 0) AS done
                    FROM lead WHERE campaign_id = ?
                    """, arguments: [campaignID])!
            funnel.leads = leads["leads"]
            funnel.dialled = leads["dialled"]
            funnel.interested = leads["interested"]
            funnel.callbacks = leads["callbacks"]
            funnel.doNotCall = leads["dnc"]
            funnel.pending = leads["pending"]
            funnel.done = leads["done"]
            let attempts = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*) AS attempts, count(DISTINCT CASE WHEN outcome IN (\(human)) THEN lead_id END) AS answered,
                        count(DISTINCT CASE WHEN outcome IN (\(conversation)) THEN lead_id END) AS conversations,
                        coalesce(sum(outcome = 'voicemail'), 0) AS voicemail, coalesce(sum(abandoned), 0) AS abandoned,
                        coalesce(sum(outcome IN (\(human))), 0) AS answered_calls
                    FROM attempt WHERE campaign_id = ? AND outcome IS NOT NULL
                    """, arguments: [campaignID])!
            funnel.attempts = attempts["attempts"]
            funnel.answered = attempts["answered"]
            funnel.conversations = attempts["conversations"]
            funnel.voicemail = attempts["voicemail"]
            funnel.abandonedCalls = attempts["abandoned"]
            funnel.answeredCalls = attempts["answered_calls"]
            return funnel
        }
    }

    /// Live attempts (started, not settled) of a campaign.
    public func liveAttemptCount(campaignID: Int64) throws -> Int {
        try self.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM attempt WHERE campaign_id = ? AND outcome IS NULL", arguments: [campaignID]) ?? 0
        }
    }
}

/// Rows of the lead report as SQLite gave them: every text cell's bytes copied into one buffer,
/// decoded into `LeadReportSource` values only when asked for.
public struct LeadReportBatch: Sendable {
    static let query = """
        SELECT lead.import_id, lead.record, lead.phone, lead.status, lead.attempts, lead.outcome, lead.exhausted, lead.callback_at,
            lead.next_attempt_at, attempt.dial_result, attempt.abandoned, call_record.attempt_id IS NOT NULL AS has_record,
            call_record.outcome AS call_outcome, call_record.sentiment_label, call_record.sentiment_score, call_record.objective,
            call_record.motive, call_record.objections, call_record.callback_at AS call_callback, call_record.summary,
            call_record.talk_seconds, call_record.first_audio_at, EXISTS (SELECT 1 FROM dnc WHERE dnc.phone = lead.phone),
            call_record.custom
        FROM lead NOT INDEXED
        LEFT JOIN attempt ON attempt.lead_id = lead.id AND attempt.number = lead.attempts
        LEFT JOIN call_record ON call_record.attempt_id = attempt.id
        WHERE lead.campaign_id = ? ORDER BY lead.id
        """
    // `NOT INDEXED`: a scan in id order. Through the (campaign, phone) index SQLite would sort
    // every row in a temporary B-tree, which took as long as the rest of the read.

    /// The query's columns by kind, in the order a row keeps them.
    static let textColumns: [Int32] = [1, 2, 3, 5, 7, 8, 9, 12, 13, 15, 16, 17, 18, 19, 21, 23]
    static let integerColumns: [Int32] = [0, 4, 6, 10, 11, 22]
    static let doubleColumns: [Int32] = [14, 20]

    let headers: [Int64: [String]]
    var bytes: [UInt8] = []
    /// Per text cell: its start in `bytes` and its length, -1 for NULL.
    var cells: [Int] = []
    var integers: [Int64] = []
    var doubles: [Double?] = []
    public private(set) var count = 0

    init(headers: [Int64: [String]], rows: Int) {
        self.headers = headers
        self.bytes.reserveCapacity(rows * 160)
        self.cells.reserveCapacity(rows * Self.textColumns.count * 2)
        self.integers.reserveCapacity(rows * Self.integerColumns.count)
        self.doubles.reserveCapacity(rows * Self.doubleColumns.count)
    }

    mutating func append(_ statement: OpaquePointer) {
        for column in Self.textColumns {
            if let text = sqlite3_column_text(statement, column) {
                let length = Int(sqlite3_column_bytes(statement, column))
                self.cells.append(self.bytes.count)
                self.cells.append(length)
                self.bytes.append(contentsOf: UnsafeBufferPointer(start: text, count: length))
            } else {
                self.cells.append(0)
                self.cells.append(-1)
            }
        }
        for column in Self.integerColumns { self.integers.append(sqlite3_column_int64(statement, column)) }
        for column in Self.doubleColumns {
            self.doubles.append(sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : sqlite3_column_double(statement, column))
        }
        self.count += 1
    }

    public subscript(row: Int) -> LeadReportSource {
        let cells = row * Self.textColumns.count * 2
        func text(_ index: Int) -> String? {
            let start = self.cells[cells + index * 2]
            let length = self.cells[cells + index * 2 + 1]
            return length < 0 ? nil : String(decoding: self.bytes[start..<(start + length)], as: UTF8.self)
        }
        func date(_ index: Int) -> Date? { text(index).flatMap(StoredDate.parse) }
        func integer(_ index: Int) -> Int64 { self.integers[row * Self.integerColumns.count + index] }
        func double(_ index: Int) -> Double? { self.doubles[row * Self.doubleColumns.count + index] }
        var call: CallRecordSummary?
        if integer(4) != 0 {
            call = CallRecordSummary(
                outcome: text(7), sentimentLabel: text(8), sentimentScore: double(0), objective: text(9), motive: text(10),
                objections: text(11).map(CampaignStore.stringArray) ?? [], callbackAt: date(12), summary: text(13), talkSeconds: double(1),
                firstAudioAt: date(14), custom: CampaignStore.stringMap(text(15)))
        }
        let importID = integer(0)
        return LeadReportSource(
            importID: importID, header: self.headers[importID] ?? [], record: text(0) ?? "", phone: text(1) ?? "", status: text(2) ?? "",
            attempts: Int(integer(1)), outcome: text(3), exhausted: integer(2) != 0, callbackAt: date(4), nextAttemptAt: date(5),
            lastDialResult: text(6), lastAbandoned: integer(3) != 0, call: call, onDoNotCallList: integer(5) != 0)
    }
}

/// Dates as GRDB stores them: "2026-07-13 18:00:00.000", UTC.
enum StoredDate {
    /// Parsed by hand; nil for any other shape.
    static func parse(_ text: String) -> Date? {
        var utf8 = text.utf8.makeIterator()
        func number(_ digits: Int) -> Int? {
            var value = 0
            for _ in 0..<digits {
                guard let byte = utf8.next(), byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        func separator(_ expected: UInt8...) -> Bool { utf8.next().map(expected.contains) ?? false }
        guard let year = number(4), separator(0x2D), let month = number(2), separator(0x2D), let day = number(2), separator(0x20, 0x54),
            let hour = number(2), separator(0x3A), let minute = number(2), separator(0x3A), let second = number(2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var milliseconds = 0
        if let dot = utf8.next() {
            guard dot == 0x2E, let fraction = number(3) else { return nil }
            milliseconds = fraction
        }
        // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second
        return Date(timeIntervalSince1970: TimeInterval(seconds) + TimeInterval(milliseconds) / 1000)
    }
}
