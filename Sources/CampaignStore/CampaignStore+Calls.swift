import CampaignCore
import Foundation
import GRDB

/// What the engine needs to talk to the callee of an attempt.
public struct CallTarget: Sendable, Hashable {
    public var attemptID: UUID
    public var campaign: String
    /// The pitch template's path.
    public var template: String
    public var phone: PhoneNumber
    /// The lead file's header and the lead's record, as imported.
    public var header: [String]
    public var values: [String]
    public var timeZones: [String]
    /// The campaign's own analysis fields.
    public var analysisFields: [AnalysisField]
}

/// The parts of a call record the reports read, next to the record's JSON.
public struct CallRecordSummary: Sendable, Hashable {
    public var outcome: String?
    public var sentimentLabel: String?
    public var sentimentScore: Double?
    public var objective: String?
    public var motive: String?
    public var objections: [String]
    public var callbackAt: Date?
    public var summary: String?
    public var talkSeconds: Double?
    /// When the first agent audio went out (engine clock, wall time).
    public var firstAudioAt: Date?
    /// The campaign's own analysis fields the model filled in.
    public var custom: [String: String]

    public init(
        outcome: String? = nil, sentimentLabel: String? = nil, sentimentScore: Double? = nil, objective: String? = nil, motive: String? = nil,
        objections: [String] = [], callbackAt: Date? = nil, summary: String? = nil, talkSeconds: Double? = nil, firstAudioAt: Date? = nil,
        custom: [String: String] = [:]
    ) {
        self.outcome = outcome
        self.sentimentLabel = sentimentLabel
        self.sentimentScore = sentimentScore
        self.objective = objective
        self.motive = motive
        self.objections = objections
        self.callbackAt = callbackAt
        self.summary = summary
        self.talkSeconds = talkSeconds
        self.firstAudioAt = firstAudioAt
        self.custom = custom
    }
}

/// A call record as stored.
public struct StoredCallRecord: Sendable, Hashable {
    public var json: String
    public var summary: CallRecordSummary
    /// The engine wrote the record for the last time (the call is over for it).
    public var finished: Bool
}

extension CampaignStore {
    /// Admits an AudioSocket connection to the call its UUID names: an attempt that is not settled
    /// and that no connection has been admitted to before. Anything else (unknown, over, or
    /// already talking on another connection: a replayed UUID) is not ours to talk to: nil.
    /// The admission is written in the same transaction, so two connections never both get it.
    public func admitCall(_ attemptID: UUID, now: Date = Date()) throws -> CallTarget? {
        try self.writer.write { db in
            let id = attemptID.uuidString.lowercased()
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT attempt.phone, lead.record, lead.time_zones, lead_import.header, campaign.name, campaign.template,
                            campaign.analysis_fields
                        FROM attempt JOIN lead ON lead.id = attempt.lead_id JOIN lead_import ON lead_import.id = lead.import_id
                        JOIN campaign ON campaign.id = attempt.campaign_id
                        WHERE attempt.id = ? AND attempt.outcome IS NULL AND attempt.engine_admitted_at IS NULL
                        """, arguments: [id]),
                let phone = PhoneNumber(e164: row["phone"])
            else { return nil }
            try db.execute(sql: "UPDATE attempt SET engine_admitted_at = ? WHERE id = ?", arguments: [now, id])
            let header = (try? JSONDecoder().decode([String].self, from: Data((row["header"] as String).utf8))) ?? []
            return CallTarget(
                attemptID: attemptID, campaign: row["name"], template: row["template"], phone: phone, header: header,
                values: LeadRecord.values(row["record"]), timeZones: (row["time_zones"] as String).split(separator: "|").map(String.init),
                analysisFields: Self.analysisFields(row["analysis_fields"]))
        }
    }

    /// Saves the engine's record of a call (after every turn, and once more at the end).
    public func saveCallRecord(_ attemptID: UUID, json: String, summary: CallRecordSummary, finished: Bool, now: Date = Date()) throws {
        let objections = String(decoding: try JSONEncoder().encode(summary.objections), as: UTF8.self)
        let custom = try summary.custom.isEmpty ? nil : String(decoding: Self.sortedJSON.encode(summary.custom), as: UTF8.self)
        try self.writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO call_record (attempt_id, record, outcome, sentiment_label, sentiment_score, objective, motive, objections,
                        callback_at, summary, talk_seconds, first_audio_at, custom, finished, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (attempt_id) DO UPDATE SET record = excluded.record, outcome = excluded.outcome,
                        sentiment_label = excluded.sentiment_label, sentiment_score = excluded.sentiment_score, objective = excluded.objective,
                        motive = excluded.motive, objections = excluded.objections, callback_at = excluded.callback_at, summary = excluded.summary,
                        talk_seconds = excluded.talk_seconds, first_audio_at = excluded.first_audio_at, custom = excluded.custom,
                        finished = excluded.finished, updated_at = excluded.updated_at
                    """,
                arguments: [
                    attemptID.uuidString.lowercased(), json, summary.outcome, summary.sentimentLabel, summary.sentimentScore, summary.objective,
                    summary.motive, objections, summary.callbackAt, summary.summary, summary.talkSeconds, summary.firstAudioAt, custom, finished,
                    now,
                ])
        }
    }

    /// The campaign's finished call records (updated since `since`, when given), with the
    /// callee's zones, oldest first: what a new analysis reads.
    public func finishedCallRecords(campaignID: Int64, since: Date? = nil) throws -> [(attemptID: UUID, json: String, timeZones: [String])] {
        try self.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT call_record.attempt_id, call_record.record, lead.time_zones FROM call_record
                    JOIN attempt ON attempt.id = call_record.attempt_id JOIN lead ON lead.id = attempt.lead_id
                    WHERE attempt.campaign_id = ? AND call_record.finished = 1 AND (? IS NULL OR call_record.updated_at >= ?)
                    ORDER BY call_record.updated_at
                    """, arguments: [campaignID, since, since]
            ).compactMap { row in
                guard let id = UUID(uuidString: row["attempt_id"]) else { return nil }
                return (id, row["record"], (row["time_zones"] as String).split(separator: "|").map(String.init))
            }
        }
    }

    /// The campaign's file and template paths as stored.
    public func campaignFiles(campaignID: Int64) throws -> (file: String, template: String)? {
        try self.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT file, template FROM campaign WHERE id = ?", arguments: [campaignID]).map { ($0["file"], $0["template"]) }
        }
    }

    public func callRecord(_ attemptID: UUID) throws -> StoredCallRecord? {
        try self.writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM call_record WHERE attempt_id = ?", arguments: [attemptID.uuidString.lowercased()])
            else { return nil }
            return Self.storedRecord(row)
        }
    }

    static func storedRecord(_ row: Row) -> StoredCallRecord {
        let objections = (row["objections"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        return StoredCallRecord(
            json: row["record"],
            summary: CallRecordSummary(
                outcome: row["outcome"], sentimentLabel: row["sentiment_label"], sentimentScore: row["sentiment_score"], objective: row["objective"],
                motive: row["motive"], objections: objections, callbackAt: row["callback_at"], summary: row["summary"],
                talkSeconds: row["talk_seconds"], firstAudioAt: row["first_audio_at"], custom: Self.stringMap(row["custom"])),
            finished: row["finished"])
    }

    static let sortedJSON: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// A JSON object of strings; empty for NULL or anything else.
    static func stringMap(_ json: String?) -> [String: String] {
        json.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
    }
}
