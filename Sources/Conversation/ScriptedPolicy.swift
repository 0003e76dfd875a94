import Foundation
import Synchronization

/// The default policy: the pitch template played as a script. No account, no network.
///
/// Every caller turn is checked, in this order, for an opt-out, a wrong person, a request
/// for a human, a callback, an objection from the catalogue, an FAQ, a refusal and a yes;
/// anything else moves the pitch on a step, and two turns in a row it cannot read end the
/// call politely.
public struct ScriptedPolicy: DialoguePolicy {
    public let template: PitchTemplate
    /// Lines spoken by the engine itself.
    public var stillThere = "Are you still there?"
    public var silenceGoodbye = "It seems this isn't a good time. Thank you, goodbye."
    public var didNotCatch = "Sorry, I didn't catch that."
    /// Asked when a turn sounds like an opt-out among other words.
    public var optOutQuestion = "Would you like me to take your number off our list?"
    /// Said when the caller answers that question with a no.
    public var keptOnList = "No problem."
    public var timeUpLine = "I'm afraid we're out of time. Thank you for talking with me, goodbye."
    public var identityLine = "I'm {{agent_name}}, an automated assistant calling on behalf of {{company}}."
    public var transferLine = "I can't transfer you right now, but I'll make sure someone from {{company}} calls you back."

    public init(template: PitchTemplate) {
        self.template = template
    }

    public func start(_ context: CallContext) throws -> any DialogueSession {
        try ScriptedDialogue(policy: self, context: context)
    }

    /// Everything this policy listens for, for the recogniser's vocabulary.
    public var phrases: [String] {
        PhraseMatcher.allBuiltIn + self.template.faq.flatMap(\.when.phrases) + self.template.objections.flatMap(\.when.phrases)
    }
}

/// One call's script.
final class ScriptedDialogue: DialogueSession {
    private struct State {
        var step = 0
        var unclear = 0
        var objectionsAnswered: Set<String> = []
        var ended = false
        /// The last turn sounded like an opt-out among other words: the agent asked.
        var confirmingOptOut = false
    }

    let opening: String
    private let policy: ScriptedPolicy
    private let context: CallContext
    private let state = Mutex(State())
    private let question: String

    init(policy: ScriptedPolicy, context: CallContext) throws {
        self.policy = policy
        self.context = context
        self.opening = try policy.template.render(policy.template.openingSource, lead: context.lead)
        self.question = try policy.template.render(policy.template.question, lead: context.lead)
    }

    private func render(_ line: String) -> String {
        (try? self.policy.template.render(line, lead: self.context.lead)) ?? line
    }

    /// The decision first, then the line: what was decided stands whether or not the caller
    /// hears the line to its end.
    private func close(_ line: String, _ outcome: CallOutcome, extra: [PolicyAction] = []) -> [PolicyOutput] {
        self.state.withLock { $0.ended = true }
        return (extra + [.endCall(outcome)]).map(PolicyOutput.action) + [.text(self.render(line))]
    }

    func reply(to callerText: String, history: [DialogueTurn]) -> AsyncThrowingStream<PolicyOutput, any Error> {
        let outputs = self.decide(callerText)
        return AsyncThrowingStream { continuation in
            for output in outputs { continuation.yield(output) }
            continuation.finish()
        }
    }

    /// The script's answer to one caller turn.
    func decide(_ callerText: String) -> [PolicyOutput] {
        let template = self.policy.template
        let words = PhraseMatcher.words(callerText)
        // An opt-out is honoured at any moment, after the closing too; one the recogniser may
        // have made of noise is asked about first, and the answer acted on.
        let optOut = PhraseMatcher.optOutCertainty(words)
        let confirming = self.state.withLock { state in
            defer { state.confirmingOptOut = false }
            return state.confirmingOptOut
        }
        if optOut == .sure || (confirming && (optOut == .unsure || PhraseMatcher.positive.matches(words))) {
            return self.close(template.closings.doNotCall, .doNotCall, extra: [.addToDoNotCall])
        }
        if self.state.withLock({ $0.ended }) { return [] }
        if confirming {
            if PhraseMatcher.negative.matches(words) { return [.text(self.policy.keptOnList + " " + self.question)] }
            // No clear answer: not put on the list, and not called again for this campaign.
            return self.close(template.closings.notInterested, .notInterested)
        }
        if optOut == .unsure {
            self.state.withLock { $0.confirmingOptOut = true }
            return [.text(self.policy.optOutQuestion)]
        }

        if PhraseMatcher.wrongPerson.matches(words) {
            return self.close(template.closings.wrongPerson, .wrongPerson)
        }
        if PhraseMatcher.human.matches(words) {
            return [.action(.transferToHuman(reason: "caller asked for a person")), .text(self.render(self.policy.transferLine))]
                + self.close(template.closings.callback, .callback, extra: [
                    .scheduleCallback(CallbackRequest(phrase: "", time: nil, timeZone: self.context.timeZone.identifier))
                ])
        }
        // A lone "tomorrow" or "later" asks for a callback only in a turn that says no yes: the
        // recogniser hears such words in noise, and "yes, later" is no refusal of the call.
        let timeWord = words.contains("tomorrow") || words.contains("later")
        if PhraseMatcher.callback.matches(words) || (timeWord && !PhraseMatcher.positive.matches(words)) {
            let time = CallbackTime.resolve(callerText, now: self.context.startedAt, timeZone: self.context.timeZone)
            let request = CallbackRequest(phrase: callerText, time: time, timeZone: self.context.timeZone.identifier)
            return self.close(template.closings.callback, .callback, extra: [.scheduleCallback(request)])
        }
        if let objection = template.objections.first(where: { $0.when.matches(words) }) {
            let first = self.state.withLock { state in
                state.unclear = 0
                return state.objectionsAnswered.insert(objection.id).inserted
            }
            if first { return [.text(self.render(objection.say) + " " + self.question)] }
            return self.close(template.closings.notInterested, .notInterested)
        }
        if PhraseMatcher.identity.matches(words) {
            self.state.withLock { $0.unclear = 0 }
            return [.text(self.render(self.policy.identityLine) + " " + self.question)]
        }
        if let answer = template.faq.first(where: { $0.when.matches(words) }) {
            self.state.withLock { $0.unclear = 0 }
            return [.text(self.render(answer.say) + " " + self.question)]
        }
        if PhraseMatcher.negative.matches(words) {
            return self.close(template.closings.notInterested, .notInterested)
        }
        let step = self.state.withLock { state -> Int? in
            if PhraseMatcher.positive.matches(words) {
                state.unclear = 0
                if state.step >= template.pitch.count { return nil }
                defer { state.step += 1 }
                return state.step
            }
            // Nothing heard, or words the script cannot place once the pitch is done: unclear.
            if words.isEmpty || state.step >= template.pitch.count {
                state.unclear += 1
                return state.unclear >= 2 ? -1 : -2
            }
            // Words the script cannot place mid-pitch: move the pitch on.
            state.unclear = 0
            defer { state.step += 1 }
            return state.step
        }
        switch step {
        case nil:
            return self.close(template.closings.interested, .interested)
        case -1:
            return self.close(template.closings.noResponse, .noConversation)
        case -2:
            return [.text(self.policy.didNotCatch + " " + self.question)]
        case let index?:
            let line = self.render(template.pitch[index])
            return [.text(index == template.pitch.count - 1 ? line + " " + self.question : line)]
        }
    }

    func silence(count: Int) -> [PolicyOutput] {
        if count >= 2 { return self.close(self.policy.silenceGoodbye, .noConversation) }
        return [.text(self.policy.stillThere)]
    }

    /// Waiting for the answer to "take your number off our list?": the next turn is the script's.
    var isConfirmingOptOut: Bool { self.state.withLock { $0.confirmingOptOut } }

    func dtmf(_ digit: Character) -> [PolicyOutput]? {
        guard String(digit) == (self.policy.template.optOutKey ?? "9") else { return nil }
        return self.close(self.policy.template.closings.doNotCall, .doNotCall, extra: [.addToDoNotCall])
    }

    func timeUp() -> [PolicyOutput] {
        self.close(self.policy.timeUpLine, .noConversation)
    }
}
