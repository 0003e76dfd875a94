import Foundation

/// How a dial attempt ended, before any conversation.
public enum DialResult: String, Sendable, Hashable, Codable, CaseIterable {
    case answered
    case busy
    case noAnswer = "no answer"
    case congestion
    case invalidNumber = "invalid number"
    case rejected
    case machine
    case failed
}

/// How one attempt ended, all things considered: the dial result, then the conversation.
public enum AttemptOutcome: String, Sendable, Hashable, Codable, CaseIterable {
    // Not answered.
    case busy
    case noAnswer = "no_answer"
    case congestion
    case failed
    case invalidNumber = "invalid_number"
    case rejected
    case voicemail
    // Answered by a person.
    case interested
    case notInterested = "not_interested"
    case callback
    case doNotCall = "do_not_call"
    case wrongPerson = "wrong_person"
    /// Answered, but no conversation took place (nobody spoke, or the callee hung up at once).
    case noConversation = "no_conversation"
    /// The callee spoke, then hung up before anything was decided: retried by its own rule.
    case hungUp = "hung_up"
    /// Answered, and nobody (no agent audio) was on the line within 2 s, or the engine never
    /// attached, or the call was cut by a crash.
    case abandoned
    /// The attempt was in flight when its runner died and nothing says how it ended.
    case lost

    public init(dial: DialResult) {
        switch dial {
        case .answered: self = .noConversation
        case .busy: self = .busy
        case .noAnswer: self = .noAnswer
        case .congestion: self = .congestion
        case .invalidNumber: self = .invalidNumber
        case .rejected: self = .rejected
        case .machine: self = .voicemail
        case .failed: self = .failed
        }
    }

    /// The retry class, or nil for outcomes that are final whatever the policy says.
    public var retryClass: RetryClass? {
        switch self {
        case .busy: return .busy
        case .noAnswer, .noConversation: return .noAnswer
        case .congestion: return .congestion
        case .failed, .abandoned, .lost: return .failed
        case .voicemail: return .voicemail
        case .callback: return .callback
        case .hungUp: return .hungUp
        case .notInterested: return .notInterested
        case .invalidNumber, .rejected, .interested, .doNotCall, .wrongPerson: return nil
        }
    }

    /// A person answered the call.
    public var isHumanAnswer: Bool {
        switch self {
        case .interested, .notInterested, .callback, .doNotCall, .wrongPerson, .noConversation, .hungUp, .abandoned: return true
        default: return false
        }
    }

    /// A conversation took place (the callee spoke with the agent).
    public var isConversation: Bool {
        switch self {
        case .interested, .notInterested, .callback, .doNotCall, .wrongPerson, .hungUp: return true
        default: return false
        }
    }
}

/// Outcome classes a retry rule can name.
public enum RetryClass: String, Sendable, Hashable, Codable, CaseIterable {
    case busy
    case noAnswer = "no_answer"
    case congestion
    case failed
    case voicemail
    case callback
    /// The callee spoke and hung up before anything was decided.
    case hungUp = "hung_up"
    /// Not retried unless the campaign has a rule for it.
    case notInterested = "not_interested"
}

/// What the conversation engine reported about an answered call.
public struct EngineReport: Sendable, Hashable {
    /// The conversation's outcome, named as `AttemptOutcome` names it; nil when the call ended
    /// before the engine decided one.
    public var outcome: AttemptOutcome?
    /// When the first agent audio went to the PBX.
    public var firstAudioAt: Date?
    public var callbackAt: Date?

    public init(outcome: AttemptOutcome?, firstAudioAt: Date?, callbackAt: Date?) {
        self.outcome = outcome
        self.firstAudioAt = firstAudioAt
        self.callbackAt = callbackAt
    }
}

extension AttemptOutcome {
    /// Longest wait from answer to the agent's first audio before a call counts as abandoned
    /// (47 CFR 64.1200(a)(7): two seconds).
    public static let abandonLimit: TimeInterval = 2

    /// An attempt's outcome from the PBX's account and the engine's. An answered call the engine
    /// never took is abandoned; one whose first agent audio came more than 2 s after the callee's
    /// completed greeting (`CallTrace.greetingEndedAt`: after AMD, the end of the greeting it
    /// heard) keeps its conversation outcome and counts as abandoned.
    public static func settle(trace: CallTrace, engine: EngineReport?) -> (outcome: AttemptOutcome, abandoned: Bool) {
        let dial = trace.result
        guard dial == .answered else { return (AttemptOutcome(dial: dial), false) }
        guard let engine, let firstAudio = engine.firstAudioAt else { return (.abandoned, true) }
        let late = trace.greetingEndedAt.map { firstAudio.timeIntervalSince($0) > Self.abandonLimit } ?? false
        return (engine.outcome ?? .noConversation, late)
    }
}
