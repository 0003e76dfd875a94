import CampaignCore
import Foundation
import GRDB

/// One dial attempt as the store knows it.
public struct Attempt: Sendable, Hashable {
    public var id: UUID
    public var campaignID: Int64
    public var leadID: Int64
    /// 1 for the lead's first attempt.
    public var number: Int
    public var phone: PhoneNumber
    public var channel: String
    public var queuedAt: Date
    public var originatedAt: Date?
    public var answeredAt: Date?

    /// The form used on the wire: ChannelId, ActionID, CEX_CALL_ID, the AudioSocket UUID.
    public var callID: String { self.id.uuidString.lowercased() }
}

/// A lead the scheduler may dial.
public struct DueLead: Sendable, Hashable {
    public var id: Int64
    public var phone: PhoneNumber
    public var timeZones: [String]
    public var attempts: Int
}

/// How an attempt ended, for `settle`.
public struct Settlement: Sendable, Hashable {
    public var outcome: AttemptOutcome
    public var trace: CallTrace
    public var dialResult: DialResult?
    public var originateError: String?
    public var firstAudioAt: Date?
    public var callbackAt: Date?
    /// Counts toward the abandon rate: answered, and no agent audio within 2 s (or none at all).
    public var abandoned: Bool
    public var note: String?

    public init(
        outcome: AttemptOutcome, trace: CallTrace = CallTrace(), dialResult: DialResult? = nil, originateError: String? = nil,
        firstAudioAt: Date? = nil, callbackAt: Date? = nil, abandoned: Bool = false, note: String? = nil
    ) {
        self.outcome = outcome
        self.abandoned = abandoned
        self.trace = trace
        self.dialResult = dialResult
        self.originateError = originateError
        self.firstAudioAt = firstAudioAt
        self.callbackAt = callbackAt
        self.note = note
    }
}

extension CampaignStore {
    /// The zone lists of the campaign's leads that are waiting to be dialled and due by `now`;
    /// with `only`, of just those numbers.
    public func pendingTimeZones(campaignID: Int64, now: Date, only: Set<String>? = nil) throws -> [String] {
        guard only?.isEmpty != true else { return [] }
        return try self.writer.read { db in
            let (numbers, numberArguments) = Self.phoneFilter(only)
            return try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT time_zones FROM lead WHERE campaign_id = ? AND status = 'pending'
                    AND (next_attempt_at IS NULL OR next_attempt_at <= ?) \(numbers)
                    """, arguments: [campaignID, now] + numberArguments)
        }
    }

    /// Waiting leads not on the do-not-call list, by zone list: how many are due by `now`,
    /// and how many by `later` (for `cex campaign check`).
    public func waitingLeads(campaignID: Int64, now: Date, later: Date) throws -> [(zones: String, dueNow: Int, dueLater: Int)] {
        try self.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT time_zones,
                        sum(next_attempt_at IS NULL OR next_attempt_at <= ?) AS due_now,
                        sum(next_attempt_at IS NULL OR next_attempt_at <= ?) AS due_later
                    FROM lead WHERE campaign_id = ? AND status = 'pending' AND phone NOT IN (SELECT phone FROM dnc)
                    GROUP BY time_zones
                    """, arguments: [now, later, campaignID]
            ).map { ($0["time_zones"], $0["due_now"], $0["due_later"]) }
        }
    }

    /// The zone lists of every lead still waiting, due or not: what the scheduler checks windows
    /// for. A scan of the campaign's waiting leads; callers keep the answer for a while.
    public func waitingTimeZones(campaignID: Int64) throws -> [String] {
        try self.writer.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT time_zones FROM lead WHERE campaign_id = ? AND status = 'pending'", arguments: [campaignID])
        }
    }

    /// `AND phone IN (…)` and its arguments for a test-number list; nothing without one.
    static func phoneFilter(_ only: Set<String>?) -> (sql: String, arguments: StatementArguments) {
        guard let only else { return ("", []) }
        return ("AND phone IN (\(databaseQuestionMarks(count: only.count)))", StatementArguments(only.sorted()))
    }

    /// Due leads in the given zone lists, least-called first, then in file order; with `only`,
    /// just those numbers (a campaign's test-number list).
    public func dueLeads(campaignID: Int64, zones: [String], now: Date, limit: Int, only: Set<String>? = nil) throws -> [DueLead] {
        guard !zones.isEmpty, limit > 0, only?.isEmpty != true else { return [] }
        return try self.writer.read { db in
            let (numbers, numberArguments) = Self.phoneFilter(only)
            var arguments: StatementArguments = [campaignID, now]
            arguments += StatementArguments(zones)
            arguments += numberArguments
            arguments += [limit]
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT id, phone, time_zones, attempts FROM lead
                    WHERE campaign_id = ? AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
                    AND time_zones IN (\(databaseQuestionMarks(count: zones.count))) \(numbers)
                    ORDER BY attempts, id LIMIT ?
                    """, arguments: arguments
            ).compactMap { row in
                guard let phone = PhoneNumber(e164: row["phone"]) else { return nil }
                let zones: String = row["time_zones"]
                return DueLead(id: row["id"], phone: phone, timeZones: zones.split(separator: "|").map(String.init), attempts: row["attempts"])
            }
        }
    }

    /// How many of the campaign's leads are due by `now` (whatever their window): the work a run
    /// that starts now has before it, for its progress line.
    public func dueLeadCount(campaignID: Int64, now: Date, only: Set<String>? = nil) throws -> Int {
        guard only?.isEmpty != true else { return 0 }
        return try self.writer.read { db in
            let (numbers, numberArguments) = Self.phoneFilter(only)
            var arguments: StatementArguments = [campaignID, now]
            arguments += numberArguments
            return try Int.fetchOne(
                db,
                sql: """
                    SELECT count(*) FROM lead
                    WHERE campaign_id = ? AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?) \(numbers)
                    """, arguments: arguments) ?? 0
        }
    }

    public enum AttemptStart: Sendable, Hashable {
        case started(Attempt)
        /// Not dialled; the lead's state says why (DNC found at the last moment, no longer due, …).
        case skipped(String)
    }

    /// Writes the attempt row, and marks the lead live, in one transaction, before anything is
    /// sent to the PBX. Checks again, inside the transaction, that the lead is still due, has no
    /// live attempt, and is not on the do-not-call list.
    public func beginAttempt(
        leadID: Int64, now: Date, id: UUID = UUID(), channel: @Sendable (PhoneNumber) -> String
    ) throws -> AttemptStart {
        try self.writer.write { db -> AttemptStart in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT campaign_id, phone, attempts FROM lead WHERE id = ? AND status = 'pending'
                        AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
                        """, arguments: [leadID, now])
            else { return .skipped("no longer due") }
            let campaignID: Int64 = row["campaign_id"]
            guard let phone = PhoneNumber(e164: row["phone"]) else { return .skipped("stored number is not E.164") }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM dnc WHERE phone = ?", arguments: [phone.e164]) ?? false {
                try db.execute(sql: "UPDATE lead SET status = 'done', outcome = 'do_not_call' WHERE id = ?", arguments: [leadID])
                return .skipped("on the do-not-call list")
            }
            let number: Int = row["attempts"] + 1
            let attempt = Attempt(id: id, campaignID: campaignID, leadID: leadID, number: number, phone: phone, channel: channel(phone), queuedAt: now)
            try db.execute(
                sql: "INSERT INTO attempt (id, campaign_id, lead_id, number, phone, channel, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [attempt.callID, campaignID, leadID, number, phone.e164, attempt.channel, now])
            try db.execute(sql: "UPDATE lead SET status = 'live', attempts = ? WHERE id = ?", arguments: [number, leadID])
            return .started(attempt)
        }
    }

    /// The PBX accepted the Originate.
    public func markOriginated(_ attemptID: UUID, at time: Date) throws {
        try self.writer.write { db in
            try db.execute(
                sql: "UPDATE attempt SET originated_at = ? WHERE id = ? AND outcome IS NULL", arguments: [time, attemptID.uuidString.lowercased()])
        }
    }

    /// Ringing and answer times as they happen, so a crash keeps them.
    public func recordProgress(_ attemptID: UUID, trace: CallTrace) throws {
        try self.writer.write { db in
            try db.execute(
                sql: """
                    UPDATE attempt SET ringing_at = coalesce(ringing_at, ?), answered_at = coalesce(answered_at, ?), amd_status = coalesce(?, amd_status)
                    WHERE id = ? AND outcome IS NULL
                    """, arguments: [trace.ringingAt, trace.answeredAt, trace.amdStatus, attemptID.uuidString.lowercased()])
        }
    }

    /// Attempts that were started and never settled (a runner died, or they are still live).
    public func unsettledAttempts(campaignID: Int64) throws -> [Attempt] {
        try self.writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM attempt WHERE campaign_id = ? AND outcome IS NULL ORDER BY queued_at", arguments: [campaignID]
            ).compactMap(Self.attempt)
        }
    }

    public func attempt(_ id: UUID) throws -> Attempt? {
        try self.writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM attempt WHERE id = ?", arguments: [id.uuidString.lowercased()]).flatMap(Self.attempt)
        }
    }

    static func attempt(_ row: Row) -> Attempt? {
        guard let id = UUID(uuidString: row["id"]), let phone = PhoneNumber(e164: row["phone"]) else { return nil }
        return Attempt(
            id: id, campaignID: row["campaign_id"], leadID: row["lead_id"], number: row["number"], phone: phone, channel: row["channel"],
            queuedAt: row["queued_at"], originatedAt: row["originated_at"], answeredAt: row["answered_at"])
    }

    /// Settles an attempt and decides the lead's next step, in one transaction: the attempt
    /// row gets its outcome (and can never change again); the lead is scheduled again by the
    /// policy, moved to the first moment its calling window is open, or is done.
    /// Returns nil when the attempt was already settled.
    @discardableResult
    public func settle(
        _ attemptID: UUID, _ settlement: Settlement, now: Date, policy: RetryPolicy, window: CallingWindow
    ) throws -> RetryPolicy.Decision? {
        try self.writer.write { db -> RetryPolicy.Decision? in
            let id = attemptID.uuidString.lowercased()
            guard let attemptRow = try Row.fetchOne(db, sql: "SELECT lead_id, phone, outcome FROM attempt WHERE id = ?", arguments: [id]),
                (attemptRow["outcome"] as String?) == nil
            else { return nil }
            let leadID: Int64 = attemptRow["lead_id"]
            let lead = try Row.fetchOne(db, sql: "SELECT attempts, time_zones FROM lead WHERE id = ?", arguments: [leadID])!
            let earlier = try String.fetchAll(db, sql: "SELECT outcome FROM attempt WHERE lead_id = ? AND outcome IS NOT NULL", arguments: [leadID])
            let outcome = settlement.outcome
            let classAttempts = 1 + earlier.compactMap(AttemptOutcome.init(rawValue:)).filter { $0.retryClass != nil && $0.retryClass == outcome.retryClass }.count
            let trace = settlement.trace
            try db.execute(
                sql: """
                    UPDATE attempt SET ringing_at = coalesce(?, ringing_at), answered_at = coalesce(?, answered_at), first_audio_at = ?,
                    ended_at = ?, originate_error = ?, originate_reason = ?, dial_status = ?, hangup_cause = ?, tech_cause = ?,
                    amd_status = ?, amd_cause = ?, greeting_end_at = ?, dial_result = ?, outcome = ?, abandoned = ?, settled_at = ?, note = ?
                    WHERE id = ?
                    """,
                arguments: [
                    trace.ringingAt, trace.answeredAt, settlement.firstAudioAt, trace.endedAt ?? now, settlement.originateError, trace.reason,
                    trace.dialStatus, trace.cause, trace.techCause, trace.amdStatus, trace.amdCause,
                    settlement.dialResult == .answered ? trace.greetingEndedAt : nil, settlement.dialResult?.rawValue,
                    outcome.rawValue, settlement.abandoned || outcome == .abandoned, now, settlement.note, id,
                ])

            let zones = (lead["time_zones"] as String).split(separator: "|").compactMap { TimeZone(identifier: String($0)) }
            var decision = policy.decide(
                outcome: outcome, attempts: lead["attempts"], classAttempts: classAttempts, endedAt: now, callbackAt: settlement.callbackAt)
            if case .retry(let at) = decision, let open = window.nextOpen(atOrAfter: at, in: zones) {
                decision = .retry(at: open)
            }
            let callback: Date? = outcome == .callback ? (decision.retryTime ?? settlement.callbackAt) : nil
            switch decision {
            case .retry(let at):
                try db.execute(
                    sql: "UPDATE lead SET status = 'pending', next_attempt_at = ?, outcome = ?, callback_at = ? WHERE id = ?",
                    arguments: [at, outcome.rawValue, callback, leadID])
            case .done(let exhausted):
                try db.execute(
                    sql: "UPDATE lead SET status = 'done', next_attempt_at = NULL, outcome = ?, exhausted = ?, callback_at = ? WHERE id = ?",
                    arguments: [outcome.rawValue, exhausted, callback, leadID])
            }
            if outcome == .doNotCall, let phone = PhoneNumber(e164: attemptRow["phone"]) {
                _ = try Self.insertDoNotCall([phone], source: "opt-out in call \(id)", now: now, in: db)
            }
            return decision
        }
    }

    /// Whether the campaign has leads still to dial, and the earliest retry time among them.
    public func nextDueTime(campaignID: Int64) throws -> (pending: Bool, at: Date?) {
        try self.writer.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT count(*) AS pending, min(next_attempt_at) AS next FROM lead WHERE campaign_id = ? AND status != 'done'",
                arguments: [campaignID])!
            return ((row["pending"] as Int) > 0, row["next"])
        }
    }

    // MARK: Pause

    /// Pauses or resumes dialling. A resume also restarts the abandon-rate count: the operator
    /// has dealt with what paused the campaign, and the calls before it must not pause it again
    /// at the next settle.
    public func setPaused(campaignID: Int64, _ paused: Bool, reason: String?, now: Date = Date()) throws {
        try self.writer.write { db in
            if paused {
                try db.execute(sql: "UPDATE campaign SET paused = 1, pause_reason = ? WHERE id = ?", arguments: [reason, campaignID])
            } else {
                try db.execute(sql: "UPDATE campaign SET paused = 0, pause_reason = NULL, resumed_at = ? WHERE id = ?", arguments: [now, campaignID])
            }
        }
    }

    /// nil when running; the reason when paused.
    public func pauseReason(campaignID: Int64) throws -> String? {
        try self.writer.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT paused, pause_reason FROM campaign WHERE id = ?", arguments: [campaignID]),
                row["paused"] as Bool
            else { return nil }
            return (row["pause_reason"] as String?) ?? "paused"
        }
    }

    /// Abandoned calls over calls a person answered, settled since `since`.
    /// Abandoned calls and calls answered by a person, settled since `since` (or since the last
    /// resume, when later). A call cut by a crash after the answer counts as answered (lost, or
    /// abandoned when no agent audio came in time): leaving it out would make one crash read as
    /// a 100% rate.
    public func abandonRate(campaignID: Int64, since: Date) throws -> (abandoned: Int, answered: Int) {
        try self.writer.read { db in
            let human = AttemptOutcome.allCases.filter(\.isHumanAnswer).map { "'\($0.rawValue)'" }.joined(separator: ", ")
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT coalesce(sum(abandoned), 0) AS abandoned,
                        coalesce(sum(outcome IN (\(human)) OR abandoned = 1 OR (outcome = 'lost' AND answered_at IS NOT NULL)), 0) AS answered
                    FROM attempt
                    WHERE campaign_id = ? AND settled_at >= max(?, coalesce((SELECT resumed_at FROM campaign WHERE id = ?), ?))
                    """, arguments: [campaignID, since, campaignID, since])!
            return (row["abandoned"], row["answered"])
        }
    }
}

extension RetryPolicy.Decision {
    public var retryTime: Date? {
        if case .retry(let at) = self { return at }
        return nil
    }
}
