import Foundation
import Testing

@testable import CampaignCore

@Suite struct RetryPolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func delaysGrowByTheBackoffWithinAClass() {
        let policy = RetryPolicy(rules: [.busy: .init(delay: .seconds(600), backoff: 2, maxAttempts: 4)], maxAttempts: 10)
        #expect(policy.decide(outcome: .busy, attempts: 1, classAttempts: 1, endedAt: self.now) == .retry(at: self.now + 600))
        #expect(policy.decide(outcome: .busy, attempts: 2, classAttempts: 2, endedAt: self.now) == .retry(at: self.now + 1200))
        #expect(policy.decide(outcome: .busy, attempts: 3, classAttempts: 3, endedAt: self.now) == .retry(at: self.now + 2400))
        #expect(policy.decide(outcome: .busy, attempts: 4, classAttempts: 4, endedAt: self.now) == .done(exhausted: true))
    }

    @Test func classBudgetsDoNotStackPastTheLeadsTotal() {
        // Each class allows 3, but the lead has 2 attempts in all: busy then no answer ends it.
        let rule = RetryPolicy.Rule(delay: .seconds(600), maxAttempts: 3)
        let policy = RetryPolicy(rules: [.busy: rule, .noAnswer: rule], maxAttempts: 2)
        #expect(policy.decide(outcome: .busy, attempts: 1, classAttempts: 1, endedAt: self.now) == .retry(at: self.now + 600))
        #expect(policy.decide(outcome: .noAnswer, attempts: 2, classAttempts: 1, endedAt: self.now) == .done(exhausted: true))
    }

    @Test(arguments: [AttemptOutcome.doNotCall, .wrongPerson, .invalidNumber, .rejected, .interested])
    func finalOutcomesAreNeverRetriedWhateverThePolicy(outcome: AttemptOutcome) {
        var rules: [RetryClass: RetryPolicy.Rule] = [:]
        for retryClass in RetryClass.allCases { rules[retryClass] = .init(delay: .seconds(600), maxAttempts: 9) }
        let policy = RetryPolicy(rules: rules, maxAttempts: 9)
        #expect(policy.decide(outcome: outcome, attempts: 1, classAttempts: 1, endedAt: self.now) == .done(exhausted: false))
    }

    @Test func notInterestedIsFinalUnlessTheCampaignSaysOtherwise() {
        #expect(RetryPolicy.standard.decide(outcome: .notInterested, attempts: 1, classAttempts: 1, endedAt: self.now) == .done(exhausted: false))
        var policy = RetryPolicy.standard
        policy.rules[.notInterested] = .init(delay: .seconds(30 * 86_400), maxAttempts: 2)
        #expect(policy.decide(outcome: .notInterested, attempts: 1, classAttempts: 1, endedAt: self.now) == .retry(at: self.now + 30 * 86_400))
    }

    @Test func aCallbackIsDueWhenTheCalleeAskedAndFallsBackToTheDelayWithoutATime() {
        let asked = self.now + 86_400
        #expect(RetryPolicy.standard.decide(outcome: .callback, attempts: 1, classAttempts: 1, endedAt: self.now, callbackAt: asked) == .retry(at: asked))
        #expect(RetryPolicy.standard.decide(outcome: .callback, attempts: 1, classAttempts: 1, endedAt: self.now) == .retry(at: self.now + 3600))
    }

    @Test func lostAndAbandonedAttemptsAreRetriedAsFailures() {
        #expect(AttemptOutcome.lost.retryClass == .failed)
        #expect(AttemptOutcome.abandoned.retryClass == .failed)
        #expect(AttemptOutcome.abandoned.isHumanAnswer)
    }
}
