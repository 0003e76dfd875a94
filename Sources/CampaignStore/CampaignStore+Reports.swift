import CampaignCore
import Foundation
import GRDB

/// One lead with its last attempt and that attempt's call record, as the reports read it.
public struct LeadReportSource: Sendable, Hashable {
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

    public init(
        header: [String], record: String, phone: String, status: String, attempts: Int, outcome: String?, exhausted: Bool, callbackAt: Date?,
        nextAttemptAt: Date?, lastDialResult: String?, lastAbandoned: Bool, call: CallRecordSummary?
    ) {
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
        try self.writer.read { db in
            var headers: [Int64: [String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, header FROM lead_import WHERE campaign_id = ?", arguments: [campaignID]) {
                headers[row["id"]] = (try? JSONDecoder().decode([String].self, from: Data((row["header"] as String).utf8))) ?? []
            }
            let cursor = try Row.fetchCursor(
                db,
                sql: """
                    SELECT lead.import_id, lead.record, lead.phone, lead.status, lead.attempts, lead.outcome, lead.exhausted, lead.callback_at,
                        lead.next_attempt_at, attempt.dial_result, attempt.abandoned, call_record.attempt_id AS has_record,
                        call_record.outcome AS call_outcome, call_record.sentiment_label, call_record.sentiment_score, call_record.objective,
                        call_record.motive, call_record.objections, call_record.callback_at AS call_callback, call_record.summary,
                        call_record.talk_seconds, call_record.first_audio_at, call_record.record AS call_json, call_record.finished
                    FROM lead
                    LEFT JOIN attempt ON attempt.lead_id = lead.id AND attempt.number = lead.attempts
                    LEFT JOIN call_record ON call_record.attempt_id = attempt.id
                    WHERE lead.campaign_id = ? ORDER BY lead.id
                    """, arguments: [campaignID])
            while let row = try cursor.next() {
                var call: CallRecordSummary?
                if (row["has_record"] as String?) != nil {
                    let objections = (row["objections"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
                    call = CallRecordSummary(
                        outcome: row["call_outcome"], sentimentLabel: row["sentiment_label"], sentimentScore: row["sentiment_score"],
                        objective: row["objective"], motive: row["motive"], objections: objections, callbackAt: row["call_callback"],
                        summary: row["summary"], talkSeconds: row["talk_seconds"], firstAudioAt: row["first_audio_at"])
                }
                try body(
                    LeadReportSource(
                        header: headers[row["import_id"]] ?? [], record: row["record"], phone: row["phone"], status: row["status"],
                        attempts: row["attempts"], outcome: row["outcome"], exhausted: row["exhausted"], callbackAt: row["callback_at"],
                        nextAttemptAt: row["next_attempt_at"], lastDialResult: row["dial_result"], lastAbandoned: (row["abandoned"] as Bool?) ?? false,
                        call: call))
            }
        }
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
