import Foundation
import Testing

@testable import CampaignCore

@Suite struct CallTraceTests {
    func trace(_ events: [CallProgress]) -> CallTrace {
        var trace = CallTrace()
        for (index, event) in events.enumerated() { trace.apply(event, at: Date(timeIntervalSince1970: Double(index))) }
        return trace
    }

    @Test func pjsipBusyIsReadFromTheHangupCauseThoughReasonSaysFailure() {
        let trace = self.trace([.hangup(cause: 17, techCause: 486, ownLeg: true), .originateResponse(reason: 0)])
        #expect(trace.result == .busy)
        #expect(trace.isComplete)
    }

    @Test func localChannelsPutTheRealCauseOnTheFarLeg() {
        let trace = self.trace([.hangup(cause: 0, techCause: nil, ownLeg: true), .hangup(cause: 34, techCause: nil, ownLeg: false), .originateResponse(reason: 8)])
        #expect(trace.cause == 34)
        #expect(trace.result == .congestion)
    }

    @Test func answeredCallsKeepWhenTheyRangAndWereAnswered() {
        let trace = self.trace([.ringing, .dialEnd(status: "ANSWER"), .originateResponse(reason: 4), .hangup(cause: 16, techCause: nil, ownLeg: true)])
        #expect(trace.result == .answered)
        #expect(trace.ringingAt == Date(timeIntervalSince1970: 0))
        #expect(trace.answeredAt == Date(timeIntervalSince1970: 1))
        #expect(trace.endedAt == Date(timeIntervalSince1970: 3))
    }

    @Test func amdMachineWins() {
        #expect(self.trace([.dialEnd(status: "ANSWER"), .amd(status: "MACHINE", cause: "LONGGREETING-2000-1500")]).result == .machine)
    }

    /// The README's dialplan: AMD listens for up to ~2.8 s before AudioSocket connects. The
    /// abandonment clock starts when the callee's greeting ended, not at the answer.
    @Test func aHumanAfterAMDIsNotAbandonedWhenTheAgentSpeaksWithinTwoSecondsOfTheGreetingsEnd() {
        let answer = Date(timeIntervalSince1970: 1000)
        var trace = CallTrace()
        trace.apply(.dialEnd(status: "ANSWER"), at: answer)
        trace.apply(.amd(status: "HUMAN", cause: nil), at: answer.addingTimeInterval(2.8))
        trace.apply(.amd(status: nil, cause: "HUMAN-800-800"), at: answer.addingTimeInterval(2.8))
        #expect(trace.greetingEndedAt == answer.addingTimeInterval(2.0))
        let engine = EngineReport(outcome: .interested, firstAudioAt: answer.addingTimeInterval(2.85), callbackAt: nil)
        #expect(AttemptOutcome.settle(trace: trace, engine: engine) == (.interested, false))
        // Late after the greeting's end all the same: abandoned.
        let late = EngineReport(outcome: .interested, firstAudioAt: answer.addingTimeInterval(4.1), callbackAt: nil)
        #expect(AttemptOutcome.settle(trace: trace, engine: late) == (.interested, true))
        // AMD unsure (no silence measured): the clock starts at its verdict.
        var unsure = CallTrace()
        unsure.apply(.dialEnd(status: "ANSWER"), at: answer)
        unsure.apply(.amd(status: "NOTSURE", cause: "TOOLONG-5000"), at: answer.addingTimeInterval(5))
        #expect(unsure.greetingEndedAt == answer.addingTimeInterval(5))
        // No AMD: the answer.
        #expect(self.trace([.dialEnd(status: "ANSWER")]).greetingEndedAt == Date(timeIntervalSince1970: 0))
    }

    @Test(arguments: [(21, DialResult.rejected), (1, .invalidNumber), (19, .noAnswer), (41, .congestion)])
    func causesMapToResults(cause: Int, result: DialResult) {
        #expect(self.trace([.hangup(cause: cause, techCause: nil, ownLeg: true), .originateResponse(reason: 0)]).result == result)
    }
}
