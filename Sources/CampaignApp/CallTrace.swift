import AsteriskManager

/// What AMI said about one originated call, gathered from its events by Uniqueid.
public struct CallTrace: Sendable, Hashable {
    public var uniqueID: String
    public var dialStatus: String?
    public var reason: OriginateReason?
    /// The cause of the first Hangup event that names a cause other than 0 (Local channels end
    /// our leg with 0 and put the real cause on the far leg), else 0.
    public var cause: Int?
    public var techCause: Int?
    public var amdStatus: String?
    public var hungUp = false

    public init(uniqueID: String) {
        self.uniqueID = uniqueID
    }

    /// Folds in one event; false when the event is not about this call.
    @discardableResult
    public mutating func apply(_ event: AMIEvent) -> Bool {
        guard let id = event.uniqueID, id == self.uniqueID || id.hasPrefix(self.uniqueID + ";") else { return false }
        switch event {
        case .dialEnd(let dial):
            self.dialStatus = dial.dialStatus
        case .originateResponse(let response):
            self.reason = response.reason
        case .hangup(let hangup):
            if let cause = hangup.cause, cause != 0 || self.cause == nil {
                if self.cause == nil || self.cause == 0 {
                    self.cause = cause
                    self.techCause = hangup.techCause
                }
            }
            if id == self.uniqueID { self.hungUp = true }
        case .varSet(let variable) where variable.variable == "AMDSTATUS":
            self.amdStatus = variable.value
        default:
            break
        }
        return true
    }

    /// Whether the call is over as far as AMI is concerned: our leg hung up and OriginateResponse seen.
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
        case HangupCause.userBusy: return .busy
        case HangupCause.noAnswer, HangupCause.noUserResponse: return .noAnswer
        case HangupCause.congestion, HangupCause.temporaryFailure: return .congestion
        case HangupCause.unallocated, HangupCause.invalidNumberFormat: return .invalidNumber
        case HangupCause.callRejected: return .rejected
        default: break
        }
        switch self.reason {
        case .answered?: return .answered
        case .busy?: return .busy
        case .noAnswer?: return .noAnswer
        case .congestion?: return .congestion
        default: return .failed
        }
    }
}

/// How a dial attempt ended, before any conversation.
public enum DialResult: String, Sendable, Hashable, CaseIterable {
    case answered
    case busy
    case noAnswer = "no answer"
    case congestion
    case invalidNumber = "invalid number"
    case rejected
    case machine
    case failed
}
