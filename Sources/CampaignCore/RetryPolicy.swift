import Foundation

/// When a lead is tried again after an attempt. One budget per lead: `maxAttempts` caps every
/// attempt whatever its class, and each class rule caps the attempts that ended in that class.
/// Final outcomes (do not call, wrong person, invalid number, rejected, interested, and not
/// interested unless a rule names it) are never retried.
public struct RetryPolicy: Sendable, Hashable {
    public struct Rule: Sendable, Hashable {
        /// Wait after the first attempt of this class.
        public var delay: Duration
        /// Each further attempt of this class waits `backoff` times longer than the last.
        public var backoff: Double
        /// Attempts that may end in this class; the lead is done after the last.
        public var maxAttempts: Int

        public init(delay: Duration, backoff: Double = 1, maxAttempts: Int) {
            self.delay = delay
            self.backoff = backoff
            self.maxAttempts = maxAttempts
        }
    }

    public var rules: [RetryClass: Rule]
    public var maxAttempts: Int

    public init(rules: [RetryClass: Rule], maxAttempts: Int) {
        self.rules = rules
        self.maxAttempts = maxAttempts
    }

    public static let standard = RetryPolicy(
        rules: [
            .busy: Rule(delay: .seconds(15 * 60), backoff: 2, maxAttempts: 3),
            .noAnswer: Rule(delay: .seconds(2 * 3600), backoff: 1.5, maxAttempts: 3),
            .congestion: Rule(delay: .seconds(10 * 60), backoff: 2, maxAttempts: 3),
            .failed: Rule(delay: .seconds(30 * 60), backoff: 2, maxAttempts: 2),
            .voicemail: Rule(delay: .seconds(4 * 3600), backoff: 1, maxAttempts: 2),
            .callback: Rule(delay: .seconds(3600), backoff: 1, maxAttempts: 2),
            .hungUp: Rule(delay: .seconds(24 * 3600), backoff: 1, maxAttempts: 2),
        ],
        maxAttempts: 5
    )

    public enum Decision: Sendable, Hashable {
        /// Dial again no earlier than this (the scheduler also waits for the calling window).
        case retry(at: Date)
        /// The lead is done: its outcome is final, or its budget is spent.
        case done(exhausted: Bool)
    }

    /// What happens to a lead after an attempt.
    /// - Parameters:
    ///   - outcome: how this attempt ended.
    ///   - attempts: every attempt the lead has had, this one included.
    ///   - classAttempts: attempts that ended in this outcome's class, this one included.
    ///   - callbackAt: the time the callee asked for, for callbacks.
    public func decide(outcome: AttemptOutcome, attempts: Int, classAttempts: Int, endedAt: Date, callbackAt: Date? = nil) -> Decision {
        guard let retryClass = outcome.retryClass, let rule = self.rules[retryClass] else { return .done(exhausted: false) }
        guard attempts < self.maxAttempts, classAttempts < rule.maxAttempts else { return .done(exhausted: true) }
        if retryClass == .callback, let callbackAt, callbackAt > endedAt { return .retry(at: callbackAt) }
        let seconds = Double(rule.delay.components.seconds) * pow(rule.backoff, Double(max(0, classAttempts - 1)))
        return .retry(at: endedAt.addingTimeInterval(seconds))
    }
}
