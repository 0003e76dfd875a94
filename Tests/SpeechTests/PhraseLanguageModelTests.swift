import Foundation
import Testing

@testable import Speech

@Suite struct PhraseLanguageModelTests {
    /// Parses the ARPA text back into log10 probabilities and back-off weights.
    static func parse(_ arpa: String) -> (unigrams: [String: (Double, Double)], bigrams: [String: [String: Double]]) {
        var unigrams: [String: (Double, Double)] = [:]
        var bigrams: [String: [String: Double]] = [:]
        var section = ""
        for line in arpa.split(separator: "\n") {
            if line.hasPrefix("\\") { section = String(line); continue }
            let fields = line.split(separator: " ").map(String.init)
            if section == "\\1-grams:" && fields.count >= 2 {
                unigrams[fields[1]] = (Double(fields[0])!, fields.count > 2 ? Double(fields[2])! : 0)
            } else if section == "\\2-grams:" && fields.count == 3 {
                bigrams[fields[1], default: [:]][fields[2]] = Double(fields[0])!
            }
        }
        return (unigrams, bigrams)
    }

    @Test func everyHistorySpreadsExactlyAllItsProbability() {
        let model = PhraseLanguageModel(
            phrases: ["remove me from your list", "call me back", "call me tomorrow", "Not interested!"],
            extraWords: ["yes", "no", "zzyzx"],
            isKnown: { $0 != "zzyzx" }
        )
        let (unigrams, bigrams) = Self.parse(model.arpa)
        #expect(unigrams["zzyzx"] == nil)
        #expect(unigrams["interested"] != nil && unigrams["yes"] != nil)
        let predicted = unigrams.keys.filter { $0 != "<s>" }
        let unigramTotal = predicted.reduce(0.0) { $0 + pow(10, unigrams[$1]!.0) }
        #expect(abs(unigramTotal - 1) < 1e-4)
        for (history, followers) in bigrams {
            let seen = followers.values.reduce(0.0) { $0 + pow(10, $1) }
            let unseen = predicted.filter { followers[$0] == nil }.reduce(0.0) { $0 + pow(10, unigrams[$1]!.0) }
            let total = seen + pow(10, unigrams[history]!.1) * unseen
            #expect(abs(total - 1) < 1e-4, "history \(history)")
        }
        #expect(bigrams["call"]?["me"] != nil)
        #expect(bigrams["me"]?["back"] != nil && bigrams["me"]?["tomorrow"] != nil)
    }

    @Test func splitsWordsAsTheDictionarySpellsThem() {
        #expect(PhraseLanguageModel.words(of: "Don't call me, OK? 9am") == ["don't", "call", "me", "ok", "am"])
    }
}
