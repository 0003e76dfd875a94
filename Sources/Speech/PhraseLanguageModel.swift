import Foundation

/// A small bigram language model in ARPA format, built from the phrases a call can act on.
///
/// pocketsphinx's open-dictation model is nearly useless on 8 kHz telephone audio; narrowing
/// the vocabulary to what the template listens for (opt-out, callback, objections, yes/no)
/// plus common conversational words makes those phrases recognisable. Unigrams are add-one
/// smoothed over the vocabulary; seen bigrams are absolutely discounted, and each history's
/// back-off weight gives the unseen bigrams exactly the remaining probability mass.
public struct PhraseLanguageModel: Sendable, Hashable {
    public let vocabulary: [String]
    let unigramCounts: [String: Int]
    let bigramCounts: [String: [String: Int]]

    /// Words always in the vocabulary, so replies outside the phrases still map to something close.
    public static let commonWords: [String] = """
        yes yeah yep no nope not okay ok sure right fine good great thanks thank you please sorry hello hi hey bye goodbye \
        who what when where why how is are was were be been am i you he she it we they me my your our this that these those \
        the a an and or but so if then than to of in on at for with about from by as up down out over just now later \
        today tomorrow morning afternoon evening night week monday tuesday wednesday thursday friday saturday sunday \
        call calling called back again time busy free interested interest want need like know think sounds maybe \
        do does did don't can can't could would will won't should have has had get got go going let tell say said \
        money price cost expensive cheap much many more less already other company number name speak talk person \
        one two three four five six seven eight nine ten hundred thousand dollars \
        remove stop list never again wrong mind really well um uh hmm
        """.split(whereSeparator: \.isWhitespace).map(String.init)

    /// - Parameters:
    ///   - phrases: what the caller is likely to say; each is a sentence of the model.
    ///   - isKnown: whether the recogniser's dictionary has a word; unknown words are left out.
    public init(phrases: [String], extraWords: [String] = Self.commonWords, isKnown: (String) -> Bool = { _ in true }) {
        var unigrams: [String: Int] = [:]
        var bigrams: [String: [String: Int]] = [:]
        for phrase in phrases {
            let words = Self.words(of: phrase).filter(isKnown)
            guard !words.isEmpty else { continue }
            let sentence = ["<s>"] + words + ["</s>"]
            for word in sentence { unigrams[word, default: 0] += 1 }
            for (first, second) in zip(sentence, sentence.dropFirst()) { bigrams[first, default: [:]][second, default: 0] += 1 }
        }
        for word in extraWords.map({ $0.lowercased() }) where isKnown(word) && unigrams[word] == nil { unigrams[word] = 0 }
        unigrams["<s>", default: 0] += 0
        unigrams["</s>", default: 0] += 0
        self.unigramCounts = unigrams
        self.bigramCounts = bigrams
        self.vocabulary = unigrams.keys.sorted()
    }

    /// Lower-case words, apostrophes kept, everything else a separator.
    public static func words(of text: String) -> [String] {
        text.lowercased().split { !($0.isLetter || $0 == "'") }.map(String.init)
    }

    static let discount = 0.5

    /// The model as ARPA text.
    public var arpa: String {
        // Unigram probabilities over every word but <s>, which only starts sentences.
        let predicted = self.vocabulary.filter { $0 != "<s>" }
        let total = predicted.reduce(0) { $0 + (self.unigramCounts[$1] ?? 0) }
        var unigram: [String: Double] = [:]
        for word in predicted {
            unigram[word] = Double((self.unigramCounts[word] ?? 0) + 1) / Double(total + predicted.count)
        }
        var bigramLines: [String] = []
        var backoff: [String: Double] = [:]
        for history in self.bigramCounts.keys.sorted() {
            let followers = self.bigramCounts[history]!
            let historyCount = Double(followers.values.reduce(0, +))
            var seenMass = 0.0
            var seenUnigramMass = 0.0
            for next in followers.keys.sorted() {
                let probability = (Double(followers[next]!) - Self.discount) / historyCount
                seenMass += probability
                seenUnigramMass += unigram[next] ?? 0
                bigramLines.append(String(format: "%.6f %@ %@", log10(probability), history, next))
            }
            backoff[history] = (1 - seenMass) / max(1e-9, 1 - seenUnigramMass)
        }
        var lines = ["\\data\\", "ngram 1=\(self.vocabulary.count)", "ngram 2=\(bigramLines.count)", "", "\\1-grams:"]
        for word in self.vocabulary {
            let probability = word == "<s>" ? "-99.000000" : String(format: "%.6f", log10(unigram[word]!))
            let weight = backoff[word].map { String(format: " %.6f", log10($0)) } ?? ""
            lines.append("\(probability) \(word)\(weight)")
        }
        lines += ["", "\\2-grams:"] + bigramLines + ["", "\\end\\", ""]
        return lines.joined(separator: "\n")
    }
}
