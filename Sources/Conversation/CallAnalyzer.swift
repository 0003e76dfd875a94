import Foundation

/// Live analysis of one caller turn.
public struct TurnAnalysis: Sendable, Hashable, Codable {
    /// -1 (hostile) … +1 (enthusiastic).
    public var sentiment: Double
    /// Objection ids from the template's catalogue, plus `other:<words>` when a refusal matched none.
    public var objections: [String]
    /// opt_out, wrong_person, callback, question, objection, negative, positive, other.
    public var intent: String
}

/// Post-call analysis.
public struct CallAnalysis: Sendable, Hashable, Codable {
    public var sentimentLabel: String
    public var sentimentScore: Double
    /// What the call set out to do (the template's goal).
    public var objective: String
    /// Why the callee answered as they did, in a few words.
    public var motive: String
    public var objections: [String]
    public var outcome: CallOutcome
    public var callbackTime: Date?
    public var summary: String
    /// The campaign's own fields, when a model analysed the call (nil otherwise).
    public var custom: [String: String]?

    public init(
        sentimentLabel: String, sentimentScore: Double, objective: String, motive: String, objections: [String], outcome: CallOutcome, callbackTime: Date?,
        summary: String, custom: [String: String]? = nil
    ) {
        self.sentimentLabel = sentimentLabel
        self.sentimentScore = sentimentScore
        self.objective = objective
        self.motive = motive
        self.objections = objections
        self.outcome = outcome
        self.callbackTime = callbackTime
        self.summary = summary
        self.custom = custom
    }
}

/// The offline analyser: a sentiment lexicon with negation, the template's objection
/// catalogue and the built-in intents. Cheap enough to run on every turn, off the audio path.
public struct LexiconAnalyzer: Sendable {
    public let template: PitchTemplate

    public init(template: PitchTemplate) {
        self.template = template
    }

    static let positiveWords: Set<String> = [
        "yes", "yeah", "great", "good", "sure", "interested", "love", "like", "sounds", "perfect", "wonderful", "thanks", "thank",
        "absolutely", "definitely", "nice", "happy", "awesome", "excellent", "okay", "ok", "please", "helpful",
    ]
    static let negativeWords: Set<String> = [
        "no", "not", "never", "stop", "annoying", "scam", "hate", "busy", "expensive", "waste", "angry", "bad", "terrible",
        "remove", "leave", "don't", "won't", "can't", "afford", "rude", "spam", "sick",
    ]
    static let negations: Set<String> = ["not", "don't", "never", "no", "isn't", "wasn't", "can't", "won't"]

    public func analyze(turn text: String) -> TurnAnalysis {
        let words = PhraseMatcher.words(text)
        var score = 0.0
        for (index, word) in words.enumerated() {
            let negated = index > 0 && Self.negations.contains(words[index - 1])
            if Self.positiveWords.contains(word) { score += negated ? -1 : 1 }
            if Self.negativeWords.contains(word) && !Self.negations.contains(word) { score += negated ? 0.5 : -1 }
            if Self.negations.contains(word) && index == words.count - 1 { score -= 1 }
        }
        let sentiment = words.isEmpty ? 0 : max(-1, min(1, score / Double(max(2, words.count / 2))))
        let objections = self.template.objections.filter { $0.when.matches(words) }.map(\.id)
        let intent: String
        if PhraseMatcher.optOutCertainty(words) == .sure {
            intent = "opt_out"
        } else if PhraseMatcher.wrongPerson.matches(words) {
            intent = "wrong_person"
        } else if PhraseMatcher.callback.matches(words) {
            intent = "callback"
        } else if !objections.isEmpty {
            intent = "objection"
        } else if text.contains("?") || ["who", "what", "how", "why", "when", "where", "is", "are", "can"].contains(words.first ?? "") {
            intent = "question"
        } else if PhraseMatcher.negative.matches(words) {
            intent = "negative"
        } else if PhraseMatcher.positive.matches(words) {
            intent = "positive"
        } else {
            intent = "other"
        }
        return TurnAnalysis(sentiment: (sentiment * 100).rounded() / 100, objections: objections, intent: intent)
    }

    /// The outcome of a call that ended before the policy decided one (the callee hung up):
    /// what was said still counts, the latest decisive turn first; a callee who spoke without
    /// deciding hung up (retried), one who never spoke had no conversation. Never a refusal
    /// nobody made.
    static func undecidedOutcome(intents: [String]) -> CallOutcome {
        for intent in intents.reversed() {
            switch intent {
            case "opt_out": return .doNotCall
            case "wrong_person": return .wrongPerson
            case "callback": return .callback
            default: continue
            }
        }
        return intents.isEmpty ? .noConversation : .hungUp
    }

    public func analyze(call record: CallRecord) -> CallAnalysis {
        let callerTurns = record.turns.filter { $0.speaker == .caller && !$0.text.isEmpty }
        let analyses = callerTurns.map { $0.analysis ?? self.analyze(turn: $0.text) }
        let score = analyses.isEmpty ? 0 : analyses.map(\.sentiment).reduce(0, +) / Double(analyses.count)
        let label = score > 0.2 ? "positive" : score < -0.2 ? "negative" : "neutral"
        var objections: [String] = []
        for analysis in analyses { for id in analysis.objections where !objections.contains(id) { objections.append(id) } }
        let outcome = record.outcome ?? Self.undecidedOutcome(intents: analyses.map(\.intent))
        let callback = record.actions.compactMap { action -> Date? in
            if case .scheduleCallback(let request) = action { return request.time }
            return nil
        }.first
        let labels = objections.compactMap { id in self.template.objections.first { $0.id == id }?.label }
        let motive: String
        switch outcome {
        case .interested: motive = "wants to \(self.template.goal)"
        case .notInterested: motive = labels.first.map { "objection: \($0.lowercased())" } ?? "not interested"
        case .callback: motive = "busy at the time of the call"
        case .doNotCall: motive = "does not want to be called"
        case .wrongPerson: motive = "not the person we meant to reach"
        case .voicemail: motive = "reached voicemail"
        case .noConversation: motive = "no conversation took place"
        case .hungUp: motive = "hung up before deciding"
        }
        var summary = "Call about: \(self.template.goal). Outcome: \(outcome.rawValue.replacingOccurrences(of: "_", with: " "))."
        if !labels.isEmpty { summary += " Objections: \(labels.joined(separator: ", "))." }
        summary += " The caller spoke \(callerTurns.count) time\(callerTurns.count == 1 ? "" : "s"); sentiment \(label)."
        return CallAnalysis(
            sentimentLabel: label, sentimentScore: (score * 100).rounded() / 100, objective: self.template.goal, motive: motive,
            objections: objections, outcome: outcome, callbackTime: callback, summary: summary
        )
    }
}
