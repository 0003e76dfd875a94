import AsteriskManager
import CampaignCore
import AudioSocket
import PBXSimulator
import Logging
import Testing

@testable import CampaignApp

@Suite struct CallTraceTests {
    func trace(_ events: [AMIMessage]) -> CallTrace {
        var trace = CallTrace()
        for message in events { trace.apply(AMIEvent(message)!, callID: "u") }
        return trace
    }

    @Test func pjsipBusyIsBusyDespiteReasonZero() {
        let trace = self.trace([
            AMIMessage([("Event", "DialEnd"), ("DestUniqueid", "u"), ("DialStatus", "BUSY")]),
            AMIMessage([("Event", "Hangup"), ("Uniqueid", "u"), ("Cause", "17"), ("TechCause", "486")]),
            AMIMessage([("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "0"), ("Uniqueid", "u")]),
        ])
        #expect(trace.result == .busy)
        #expect(trace.isComplete)
    }

    @Test func localChannelsPutTheCauseOnTheFarLeg() {
        let trace = self.trace([
            AMIMessage([("Event", "Hangup"), ("Uniqueid", "u;2"), ("Cause", "34")]),
            AMIMessage([("Event", "Hangup"), ("Uniqueid", "u"), ("Cause", "0")]),
            AMIMessage([("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "8"), ("Uniqueid", "u")]),
        ])
        #expect(trace.cause == 34)
        #expect(trace.result == .congestion)
    }

    @Test func reasonIsTheFallbackAndOtherCallsAreIgnored() {
        var trace = CallTrace()
        let applied = trace.apply(AMIEvent(AMIMessage([("Event", "Hangup"), ("Uniqueid", "other"), ("Cause", "17")]))!, callID: "u")
        #expect(!applied)
        trace.apply(AMIEvent(AMIMessage([("Event", "OriginateResponse"), ("Reason", "3"), ("Uniqueid", "u")]))!, callID: "u")
        #expect(trace.result == .noAnswer)
        #expect(!trace.isComplete)
    }
}

@Suite(.timeLimit(.minutes(1))) struct SpineDemoTests {
    @Test func theDemoDrivesEveryOutcomeEndToEnd() async throws {
        var options = SpineDemo.Options()
        options.ringTime = .milliseconds(50)
        let report = try await SpineDemo.run(options: options, logger: Logger(label: "test"))
        let results = Dictionary(uniqueKeysWithValues: report.calls.map { ($0.label, $0.trace.result) })
        #expect(
            results == [
                "answers and talks": .answered, "busy (PJSIP)": .busy, "busy (Local)": .busy, "no answer": .noAnswer,
                "congestion (Local)": .congestion, "unallocated number": .invalidNumber, "rejected": .rejected, "voicemail (AMD)": .machine,
            ]
        )
        let answered = try #require(report.calls.first { $0.label == "answers and talks" })
        #expect(answered.audioEnding == .engineHungUp)
        let outbound = try #require(answered.outbound)
        #expect(outbound.underruns == 0)
        #expect(outbound.speechFrames > 50)
        // Every frame the engine sent reached the stand-in, plus the hang-up frame.
        #expect(answered.framesReceivedByCaller == outbound.framesSent + 1)
        #expect(SpineDemo.render(report).contains("8 calls"))
    }
}
