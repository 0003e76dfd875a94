import AsteriskManager
import CampaignCore
import Testing

@testable import CampaignApp

/// AMI events, as Asterisk sends them, applied to a call's trace.
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

    @Test func amdsVerdictAndCauseAreReadFromTheVariablesOrAnyAMDUserEvent() {
        let variables = self.trace([
            AMIMessage([("Event", "VarSet"), ("Uniqueid", "u"), ("Variable", "AMDSTATUS"), ("Value", "HUMAN")]),
            AMIMessage([("Event", "VarSet"), ("Uniqueid", "u"), ("Variable", "AMDCAUSE"), ("Value", "HUMAN-800-800")]),
        ])
        #expect(variables.amdStatus == "HUMAN" && variables.amdCause == "HUMAN-800-800")
        let user = self.trace([AMIMessage([("Event", "UserEvent"), ("UserEvent", "AMD"), ("Uniqueid", "u"), ("Status", "MACHINE"), ("Cause", "MAXWORDS-4-4")])])
        #expect(user.amdStatus == "MACHINE" && user.amdCause == "MAXWORDS-4-4")
        #expect(user.result == .machine)
    }
}
