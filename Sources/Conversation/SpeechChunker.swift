/// Cuts streamed reply text into speakable chunks, clause first: the first chunk ends at the
/// first clause boundary with enough words to sound natural (so speech starts early), later
/// chunks at sentence ends. A "." inside a number ("$29.99") or after a title ("Dr.") does
/// not end a sentence; a boundary at the end of the text so far waits for the next character.
public struct SpeechChunker: Sendable {
    /// Words a first clause needs before a comma may end it.
    public var firstClauseWords = 4
    private var pending = ""
    private var emitted = 0

    static let abbreviations: Set<String> = ["mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "inc", "ltd", "co", "e.g", "i.e", "a.m", "p.m"]

    public init() {}

    /// Adds streamed text; returns the chunks it completes.
    public mutating func append(_ text: String) -> [String] {
        self.pending += text
        var chunks: [String] = []
        while let cut = self.nextBoundary() {
            let chunk = String(self.pending[..<cut]).trimmingSpaces()
            self.pending = String(self.pending[cut...])
            if !chunk.isEmpty {
                chunks.append(chunk)
                self.emitted += 1
            }
        }
        return chunks
    }

    /// A whole reply's chunks.
    public static func chunks(of text: String) -> [String] {
        var chunker = SpeechChunker()
        return chunker.append(text) + chunker.finish()
    }

    /// The end of the reply: whatever is left.
    public mutating func finish() -> [String] {
        let rest = self.pending.trimmingSpaces()
        self.pending = ""
        guard !rest.isEmpty else { return [] }
        self.emitted += 1
        return [rest]
    }

    /// The index just past the next boundary in `pending`, if one is settled.
    private func nextBoundary() -> String.Index? {
        let text = self.pending
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            guard next < text.endIndex else { return nil }  // need one character of lookahead
            let following = text[next]
            switch character {
            case ".", "!", "?":
                if following.isWhitespace || following == "\"" || following == "'" || following == ")" {
                    if character == "." && self.endsWithAbbreviation(text[..<index]) { break }
                    return next
                }
            case "\n":
                return next
            case ",", ";", ":", "—":
                if self.emitted == 0 && following.isWhitespace && Self.wordCount(text[..<index]) >= self.firstClauseWords {
                    return next
                }
            default:
                break
            }
            index = next
        }
        return nil
    }

    private func endsWithAbbreviation(_ text: Substring) -> Bool {
        let word = text.split(whereSeparator: { $0.isWhitespace }).last.map { $0.lowercased() } ?? ""
        return Self.abbreviations.contains(word) || (word.count == 1 && word.first!.isLetter)
    }

    static func wordCount(_ text: Substring) -> Int {
        text.split(whereSeparator: { $0.isWhitespace }).count
    }
}

extension String {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
