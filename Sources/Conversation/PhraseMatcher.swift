import Foundation
import Speech

/// Matches what the caller said against trigger phrases, tolerant of recogniser noise:
/// a phrase matches when its words appear in order in the utterance, with at most one
/// other word between each two of them. A word also matches its -s, -ed and -ing forms
/// ("called" for "call"), which the recogniser often confuses.
public enum PhraseMatcher {
    public static func words(_ text: String) -> [String] {
        // (Foundation's replacing costs more than the rest, and most text has no curly apostrophe.)
        PhraseLanguageModel.words(of: text.contains("’") ? text.replacingOccurrences(of: "’", with: "'") : text)
    }

    /// True when `phrase`'s words appear in order in `utterance`, at most one word apart.
    public static func matches(_ utterance: [String], _ phrase: String) -> Bool {
        self.matches(utterance, words: self.words(phrase))
    }

    static func matches(_ utterance: [String], words wanted: [String]) -> Bool {
        guard let first = wanted.first else { return false }
        for start in utterance.indices where self.same(utterance[start], first) {
            var position = start
            var matched = 1
            for word in wanted.dropFirst() {
                let window = (position + 1)..<min(utterance.count, position + 3)
                guard let found = window.first(where: { self.same(utterance[$0], word) }) else { break }
                position = found
                matched += 1
            }
            if matched == wanted.count { return true }
        }
        return false
    }

    static func same(_ heard: String, _ wanted: String) -> Bool {
        guard heard.hasPrefix(wanted) else { return false }
        let rest = heard.dropFirst(wanted.count)
        return rest.isEmpty || (wanted.count >= 3 && (rest == "s" || rest == "ed" || rest == "ing"))
    }

    /// Built-in intents every call listens for. Whole sentences callers say are listed too:
    /// they also train the recogniser's phrase model.
    public static let optOut: PhraseSet = [
        "stop", "remove me", "take me off", "do not call", "don't call", "stop calling", "unsubscribe", "opt out",
        "never call", "don't ever call", "take my number off",
        "stop calling me", "please remove me from your list", "take me off your list", "do not call me again",
        "don't call this number again", "put me on your do not call list",
    ]
    public static let wrongPerson: PhraseSet = ["wrong number", "wrong person", "no one by that name", "doesn't live here", "not me", "you have the wrong"]
    public static let callback: PhraseSet = [
        "call me back", "call back", "call me later", "call me tomorrow", "call me next", "busy right now", "not a good time",
        "bad time", "i'm busy", "in a meeting", "driving",
    ]
    public static let human: PhraseSet = ["real person", "speak to a person", "talk to a person", "a human", "representative", "speak to someone"]
    public static let negative: PhraseSet = ["not interested", "no thanks", "no thank you", "not for me", "no", "nope", "don't want", "not really"]
    public static let positive: PhraseSet = [
        "yes", "yeah", "yep", "sure", "sounds good", "interested", "okay", "ok", "sign me up", "that works", "let's do it",
        "go ahead", "why not", "alright", "of course", "absolutely", "i'd like",
    ]
    public static let identity: PhraseSet = ["who is this", "who are you", "who's calling", "what company", "where are you calling from", "is this a robot", "are you a robot", "is this a real"]

    /// How sure an utterance is an opt-out. The recogniser's phrase model is biased toward what
    /// the call listens for, and makes "opt out" or "stop" of noise ("you right opt out" for "I
    /// am driving right now"); a request put in other words it does not invent.
    public enum OptOutCertainty: Sendable, Hashable {
        case none
        /// Opt-out words among others: ask before acting.
        case unsure
        /// Acted on at once.
        case sure
    }

    /// Opt-outs in words a recogniser does not make of noise.
    static let sureOptOut: PhraseSet = [
        "remove me", "take me off", "do not call", "don't call", "stop calling", "never call", "don't ever call", "take my number off",
        "do not call list", "remove my number", "stop calling me",
    ]
    /// The words a short opt-out is made of ("Stop.", "Opt out, please."): the disclosure's own, alone.
    static let shortOptOutWords: Set<String> = ["stop", "opt", "out", "unsubscribe", "please", "just", "i", "want", "to", "now"]

    public static func optOutCertainty(_ words: [String]) -> OptOutCertainty {
        guard self.optOut.matches(words) else { return .none }
        if self.sureOptOut.matches(words) { return .sure }
        return words.allSatisfy { self.shortOptOutWords.contains($0) } ? .sure : .unsure
    }

    /// Every phrase the built-in intents listen for, for the recogniser's vocabulary.
    /// What only an answering machine's greeting says.
    public static let voicemailGreeting: PhraseSet = [
        "leave a message", "leave your message", "leave your name and number", "after the tone", "after the beep", "at the tone",
        "voicemail", "voice mail", "mailbox", "record your message", "not available to take your call", "can't take your call",
        "cannot take your call", "can't come to the phone", "please leave a message after the tone",
    ]

    public static var allBuiltIn: [String] {
        [optOut, wrongPerson, callback, human, negative, positive, identity, voicemailGreeting].flatMap(\.phrases)
    }
}

/// Trigger phrases, split into words once (splitting is what matching a turn against them
/// would otherwise spend its time on). Written and read as a list of strings.
public struct PhraseSet: Sendable, Hashable, Codable, ExpressibleByArrayLiteral {
    public let phrases: [String]
    private let words: [[String]]

    public init(_ phrases: [String]) {
        self.phrases = phrases
        self.words = phrases.map(PhraseMatcher.words)
    }

    public init(arrayLiteral phrases: String...) {
        self.init(phrases)
    }

    public init(from decoder: any Decoder) throws {
        self.init(try [String](from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try self.phrases.encode(to: encoder)
    }

    public static func == (lhs: PhraseSet, rhs: PhraseSet) -> Bool { lhs.phrases == rhs.phrases }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.phrases) }

    /// True when any of the phrases is in `utterance` (words as `PhraseMatcher.words` splits them).
    public func matches(_ utterance: [String]) -> Bool {
        self.words.contains { PhraseMatcher.matches(utterance, words: $0) }
    }
}
