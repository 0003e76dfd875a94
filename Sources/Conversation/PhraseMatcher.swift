import Foundation
import Speech

/// Matches what the caller said against trigger phrases, tolerant of recogniser noise:
/// a phrase matches when its words appear in order in the utterance, with at most one
/// other word between each two of them. A word also matches its -s, -ed and -ing forms
/// ("called" for "call"), which the recogniser often confuses.
public enum PhraseMatcher {
    public static func words(_ text: String) -> [String] {
        PhraseLanguageModel.words(of: text.replacingOccurrences(of: "’", with: "'"))
    }

    public static func matches(_ utterance: [String], _ phrase: String) -> Bool {
        let wanted = self.words(phrase)
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

    public static func matchesAny(_ utterance: [String], _ phrases: [String]) -> Bool {
        phrases.contains { self.matches(utterance, $0) }
    }

    /// Built-in intents every call listens for. Whole sentences callers say are listed too:
    /// they also train the recogniser's phrase model.
    public static let optOut = [
        "stop", "remove me", "take me off", "do not call", "don't call", "stop calling", "unsubscribe", "opt out",
        "never call", "don't ever call", "take my number off",
        "stop calling me", "please remove me from your list", "take me off your list", "do not call me again",
        "don't call this number again", "put me on your do not call list",
    ]
    public static let wrongPerson = ["wrong number", "wrong person", "no one by that name", "doesn't live here", "not me", "you have the wrong"]
    public static let callback = [
        "call me back", "call back", "call me later", "call me tomorrow", "call me next", "busy right now", "not a good time",
        "bad time", "i'm busy", "in a meeting", "driving",
    ]
    public static let human = ["real person", "speak to a person", "talk to a person", "a human", "representative", "speak to someone"]
    public static let negative = ["not interested", "no thanks", "no thank you", "not for me", "no", "nope", "don't want", "not really"]
    public static let positive = [
        "yes", "yeah", "yep", "sure", "sounds good", "interested", "okay", "ok", "sign me up", "that works", "let's do it",
        "go ahead", "why not", "alright", "of course", "absolutely", "i'd like",
    ]
    public static let identity = ["who is this", "who are you", "who's calling", "what company", "where are you calling from", "is this a robot", "are you a robot", "is this a real"]

    /// Every phrase the built-in intents listen for, for the recogniser's vocabulary.
    public static var allBuiltIn: [String] {
        optOut + wrongPerson + callback + human + negative + positive + identity
    }
}
