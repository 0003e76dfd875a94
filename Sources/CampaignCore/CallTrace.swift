import Foundation

/// What the PBX said about one originated call, reduced to what decides its outcome. The
/// application turns AMI events into these (Local channels' `;2` legs included).
public enum CallProgress: Sendable, Hashable {
    /// The destination is ringing (DialState RINGING, Newstate 5).
    case ringing
    /// The call was answered (DialEnd ANSWER, Newstate Up).
    case answered
    /// DialEnd's DialStatus.
    case dialEnd(status: String)
    /// OriginateResponse's Reason.
    case originateResponse(reason: Int)
    /// A Hangup on the originated channel (`ownLeg`) or on its Local partner.
    case hangup(cause: Int?, techCause: Int?, ownLeg: Bool)
    /// AMD's verdict (AMDSTATUS, AMDCAUSE); either may come alone (two VarSet events) or
    /// together (the UserEvent).
    case amd(status: String?, cause: String?)
}

/// One attempt's dial state, folded from `CallProgress`s with the time each arrived.
public struct CallTrace: Sendable, Hashable {
    public var dialStatus: String?
    public var reason: Int?
    /// The cause of the first Hangup that names a cause other than 0 (Local channels end our
    /// leg with 0 and put the real cause on the far leg), else 0.
    public var cause: Int?
    public var techCause: Int?
    public var amdStatus: String?
    public var amdCause: String?
    /// When AMD's verdict arrived.
    public var amdAt: Date?
    public var hungUp = false
    public var ringingAt: Date?
    public var answeredAt: Date?
    public var endedAt: Date?

    public init() {}

    public mutating func apply(_ event: CallProgress, at time: Date) {
        switch event {
        case .ringing:
            if self.ringingAt == nil { self.ringingAt = time }
        case .answered:
            if self.answeredAt == nil { self.answeredAt = time }
        case .dialEnd(let status):
            self.dialStatus = status
            if status == "ANSWER", self.answeredAt == nil { self.answeredAt = time }
        case .originateResponse(let reason):
            self.reason = reason
            if reason == OriginateReasonCode.answered, self.answeredAt == nil { self.answeredAt = time }
        case .hangup(let cause, let techCause, let ownLeg):
            if let cause, cause != 0 || self.cause == nil, self.cause == nil || self.cause == 0 {
                self.cause = cause
                self.techCause = techCause
            }
            if ownLeg {
                self.hungUp = true
                self.endedAt = time
            }
        case .amd(let status, let cause):
            if let status, !status.isEmpty {
                self.amdStatus = status
                if self.amdAt == nil { self.amdAt = time }
            }
            if let cause, !cause.isEmpty { self.amdCause = cause }
        }
    }

    /// When the callee's greeting ended, as the abandonment rule reads it (16 CFR
    /// 310.4(b)(1)(iv): the agent within 2 s of the completed greeting). With AMD in front of the
    /// engine, its verdict less the silence it waited for after the greeting (`HUMAN-<silence>-<setting>`),
    /// or the verdict time when it gave no such silence; without AMD, the answer.
    public var greetingEndedAt: Date? {
        guard let amdAt = self.amdAt else { return self.answeredAt }
        if let cause = self.amdCause, cause.hasPrefix("HUMAN-"),
            let silence = cause.split(separator: "-").dropFirst().first.flatMap({ Int($0) }), silence >= 0
        {
            let end = amdAt.addingTimeInterval(-Double(silence) / 1000)
            return self.answeredAt.map { max($0, end) } ?? end
        }
        return amdAt
    }

    /// Over as far as the PBX is concerned: our leg hung up and OriginateResponse seen.
    public var isComplete: Bool { self.hungUp && self.reason != nil }

    /// The dial result. DialEnd's DialStatus and the Hangup cause decide; Reason is the fallback,
    /// because PJSIP reports busy and rejected calls with Reason 0 (PROTOCOLS.md §1.5).
    public var result: DialResult {
        if self.amdStatus == "MACHINE" { return .machine }
        switch self.dialStatus {
        case "ANSWER": return .answered
        case "BUSY": return .busy
        case "NOANSWER": return .noAnswer
        case "CONGESTION": return .congestion
        default: break
        }
        switch self.cause {
        case Q850.userBusy: return .busy
        case Q850.noAnswer, Q850.noUserResponse: return .noAnswer
        case Q850.congestion, Q850.temporaryFailure: return .congestion
        case Q850.unallocated, Q850.invalidNumberFormat: return .invalidNumber
        case Q850.callRejected: return .rejected
        default: break
        }
        switch self.reason {
        case OriginateReasonCode.answered: return .answered
        case OriginateReasonCode.busy: return .busy
        case OriginateReasonCode.noAnswer: return .noAnswer
        case OriginateReasonCode.congestion: return .congestion
        default: return .failed
        }
    }
}

/// The Q.850 hangup causes the dial result reads.
public enum Q850 {
    public static let unallocated = 1
    public static let normalClearing = 16
    public static let userBusy = 17
    public static let noUserResponse = 18
    public static let noAnswer = 19
    public static let callRejected = 21
    public static let invalidNumberFormat = 28
    public static let congestion = 34
    public static let temporaryFailure = 41
}

/// OriginateResponse `Reason` values (AST_CONTROL_*).
public enum OriginateReasonCode {
    public static let failure = 0
    public static let hangup = 1
    public static let noAnswer = 3
    public static let answered = 4
    public static let busy = 5
    public static let congestion = 8
}
